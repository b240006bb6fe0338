<%inherit file="/admin_layout.mako"/>
<%def name="title()">Audit</%def>
<h1>Audit trail</h1>
<p class="muted">Every change made here, newest first: who, when, what.</p>
<form method="get" class="filters" role="search">
  <div class="field"><label for="a-user">User</label><input id="a-user" name="user" value="${who}"></div>
  <div class="field"><label for="a-q">Text</label><input id="a-q" name="q" value="${text}" type="search"></div>
  <button type="submit">Show</button>
</form>
<div class="table-wrap">
<table id="audit">
<thead><tr><th scope="col">When (UTC)</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">Target</th><th scope="col">Details</th></tr></thead>
<tbody>
% for row in rows:
<tr><td class="nowrap">${row.at.strftime('%Y-%m-%d %H:%M:%S')}</td><td>${row.username}<br><span class="muted">${row.ip}</span></td>
<td>${row.action}</td><td>${row.target}</td><td><pre class="details">${row.details}</pre></td></tr>
% endfor
% if not rows:
<tr><td colspan="5" class="muted">Nothing recorded yet.</td></tr>
% endif
</tbody>
</table>
</div>
% if more:
<p><a href="${ui.url_for('audit', _query={'user': who, 'q': text, 'before': more})}">Older entries</a></p>
% endif

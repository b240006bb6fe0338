<%inherit file="/admin_layout.mako"/>
<%namespace name="f" file="/admin_forms.mako"/>
<%def name="title()">Extensions</%def>
<div class="page-head">
  <h1>Extensions <span class="muted">(${total})</span></h1>
  <a class="button primary" href="${ui.url_for('extension_new')}">Add an extension</a>
</div>
<form method="get" class="filters card" role="search" aria-label="Search extensions">
  <div class="field"><label for="q">Number or name</label><input id="q" name="q" type="search" value="${q}"></div>
  <button type="submit">Search</button>
</form>
${f.filter_box('ext-table', 'Narrow this page')}
<div class="table-wrap">
<table id="ext-table">
<thead><tr><th scope="col">Extension</th><th scope="col">Name</th><th scope="col">Directory</th><th scope="col">Phones</th><th scope="col" class="hide-narrow">Mailbox</th></tr></thead>
<tbody>
% for e in rows:
<tr>
  <td><a href="${ui.url_for('extension', user_id=e.user_id)}">${e.user_id}</a></td>
  <td>${(e.first_name + ' ' + e.last_name).strip() or '—'}</td>
  <td>${'listed' if e.in_directory else 'hidden'}</td>
  <td>
% for mac in carried.get(e.id, []):
    <a class="mono" href="${ui.url_for('phone', mac=mac)}">${mac}</a>
% endfor
% if not carried.get(e.id):
    <span class="muted">none</span>
% endif
  </td>
  <td class="hide-narrow">${e.mailbox or '—'}</td>
</tr>
% endfor
% if not rows:
<tr><td colspan="5" class="muted">No extensions${' match' if q else ' yet'}.</td></tr>
% endif
</tbody>
</table>
</div>
% if pages > 1:
<nav class="pager" aria-label="Pages">
% if page > 1:
<a href="${ui.url_for('extensions', _query={'q': q, 'page': page - 1})}">Previous</a>
% endif
<span>Page ${page} of ${pages}</span>
% if page < pages:
<a href="${ui.url_for('extensions', _query={'q': q, 'page': page + 1})}">Next</a>
% endif
</nav>
% endif

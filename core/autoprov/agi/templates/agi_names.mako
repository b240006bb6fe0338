<%inherit file="/admin_layout.mako"/>
<%namespace name="f" file="/admin_forms.mako"/>
<%def name="title()">Caller names</%def>
<h1>Caller-ID names</h1>
<p class="muted">Calls from a number show this name (the <code>cid-name</code> script).</p>
<section class="card">
<h2>Add or replace</h2>
<form method="post" action="${ui.url_for('caller_names')}" class="filters" novalidate>
  ${f.csrf()}
  ${f.field('number', 'Number', values['number'], errors.get('number'), required=True, attrs='inputmode="tel" autocomplete="off"')}
  ${f.field('name', 'Name', values['name'], errors.get('name'), required=True, attrs='maxlength="80" autocomplete="off"')}
  <button type="submit" class="primary">Save</button>
</form>
</section>
<form method="get" class="filters" role="search"><div class="field"><label for="q">Search</label><input id="q" name="q" type="search" value="${q}"></div><button type="submit">Search</button></form>
${f.filter_box('names-table', 'Narrow this list')}
<div class="table-wrap"><table id="names-table">
<thead><tr><th scope="col">Number</th><th scope="col">Name</th></tr></thead>
<tbody>
% for row in rows:
<tr><td class="mono"><a href="${ui.url_for('caller_name', number=row.number)}">${row.number}</a></td><td>${row.name}</td></tr>
% endfor
% if not rows:
<tr><td colspan="2" class="muted">None yet.</td></tr>
% endif
</tbody></table></div>

<%inherit file="/admin_layout.mako"/>
<%namespace name="f" file="/admin_forms.mako"/>
<%namespace name="j" file="/prov_import_parts.mako"/>
<%def name="title()">Import</%def>
<h1>Import extensions and phones from CSV</h1>
% if refused:
${j.busy_note(busy)}
% elif running:
<p class="flash" role="status">An import is running: <a href="${ui.url_for('import_job', job=running.id)}">see its progress</a>.</p>
% endif
% if general:
<div class="alert" role="alert">
<p><strong>Nothing was imported.</strong></p>
<ul>
% for e in general:
<li>${e}</li>
% endfor
</ul></div>
% endif
<section class="card">
<p>One row per extension, optionally on a line of a phone; nothing is saved unless every row is good.
Columns: <code>${', '.join(columns)}</code> (see docs/import.md). "Check" reads every row and saves nothing;
a large file is checked in the background while its page shows how far it got.</p>
<form method="post" action="${ui.url_for('import')}" enctype="multipart/form-data" data-busy="Uploading…">
  ${f.csrf()}
  <div class="field"><label for="f-file">CSV file</label><input id="f-file" name="file" type="file" accept=".csv,text/csv"></div>
  <div class="field"><label for="f-text">…or paste it</label><textarea id="f-text" name="text" rows="6" spellcheck="false">
${text}</textarea></div>
  <div class="actions">
    <button type="submit" name="action" value="check" class="primary">Check</button>
  </div>
  <p class="busy" role="status" hidden><progress></progress> <span></span></p>
</form>
</section>
% if recent:
<section class="card" aria-labelledby="h-recent">
<h2 id="h-recent">Recent imports</h2>
<div class="table-wrap"><table>
<thead><tr><th scope="col">Started (UTC)</th><th scope="col">By</th><th scope="col">File</th><th scope="col">State</th>
<th scope="col">Rows</th><th scope="col">Errors</th></tr></thead>
<tbody>
% for job in recent:
<tr><td class="nowrap"><a href="${ui.url_for('import_job', job=job.id)}">${job.created.strftime('%Y-%m-%d %H:%M:%S')}</a></td>
<td>${job.username}</td><td>${job.source}</td><td>${j.state_badge(job)}</td>
<td>${'{:,}'.format(job.rows_total) if job.rows_total is not None else '…'}</td><td>${'{:,}'.format(job.error_count)}</td></tr>
% endfor
</tbody></table></div>
</section>
% endif

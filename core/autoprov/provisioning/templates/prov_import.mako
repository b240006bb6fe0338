<%inherit file="/admin_layout.mako"/>
<%namespace name="f" file="/admin_forms.mako"/>
<%def name="title()">Import</%def>
<h1>Import extensions and phones from CSV</h1>
<section class="card">
<p>One row per extension, optionally on a line of a phone; nothing is saved unless every row is good.
Columns: <code>${', '.join(columns)}</code> (see docs/import.md).</p>
<form method="post" action="${ui.url_for('import')}" enctype="multipart/form-data" data-busy="Checking every row…">
  ${f.csrf()}
  <div class="field"><label for="f-file">CSV file</label><input id="f-file" name="file" type="file" accept=".csv,text/csv"></div>
  <div class="field"><label for="f-text">…or paste it</label><textarea id="f-text" name="text" rows="6" spellcheck="false">${text}</textarea></div>
  <div class="actions">
    <button type="submit" name="action" value="check" class="primary">Check</button>
  </div>
  <p class="busy" role="status" hidden><progress></progress> <span></span></p>
</form>
</section>
% if general:
<div class="alert" role="alert">
<p><strong>Nothing was imported.</strong></p>
<ul>
% for e in general:
<li>${e}</li>
% endfor
</ul></div>
% endif
% if preview:
<section class="card" aria-labelledby="h-preview">
<h2 id="h-preview">Preview</h2>
% if errors:
<p class="alert" role="alert"><strong>${sum(len(v) for v in errors.values())} error(s) in ${len(errors)} row(s); nothing was imported.</strong> Correct the file and check it again.</p>
% elif not general:
<p class="flash" role="status">Every row is good: ${len(preview) - 1} row(s).</p>
<form method="post" action="${ui.url_for('import')}" data-busy="Importing, all or nothing…">
  ${f.csrf()}
  <input type="hidden" name="text" value="${text}">
  <p class="busy" role="status" hidden><progress></progress> <span></span></p>
  <button type="submit" name="action" value="import" class="primary">Import ${len(preview) - 1} row(s)</button>
</form>
% endif
<div class="table-wrap"><table id="preview-table">
<thead><tr><th scope="col">Line</th>
% for cell in preview[0][1:]:
<th scope="col">${cell}</th>
% endfor
<th scope="col">Problems</th></tr></thead>
<tbody>
% for row in preview[1:]:
<% line = int(row[0]) %>
<tr${' class="row-error"' if line in errors else '' | n}>
% for cell in row:
<td>${cell}</td>
% endfor
<td>
% for e in errors.get(line, []):
<span class="problem">${e}</span><br>
% endfor
</td></tr>
% endfor
</tbody></table></div>
% if len(preview) > 2000:
<p class="muted">The first 2,000 rows are shown.</p>
% endif
</section>
% endif

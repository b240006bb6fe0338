<%inherit file="/admin_layout.mako"/>
<%namespace name="f" file="/admin_forms.mako"/>
<%namespace name="j" file="/prov_import_parts.mako"/>
<%def name="title()">Import: ${job.source}</%def>
<%def name="head()">
% if job.is_running:
## Without JavaScript the page reloads itself; with it, admin.js polls the status URL instead.
<noscript><meta http-equiv="refresh" content="2"></noscript>
% endif
</%def>
<%
    total = job.rows_total
    done = job.rows_checked
    verb = {'checking': 'Checking', 'importing': 'Importing'}.get(job.state, '')
%>
<div class="page-head">
  <h1>Import of ${job.source} ${j.state_badge(job)}</h1>
  <a class="button" href="${ui.url_for('import')}">New import</a>
</div>
<p class="muted">Started by ${job.username} at ${job.created.strftime('%Y-%m-%d %H:%M:%S')} UTC.</p>
% if refused or refusal:
% if refusal:
<div class="alert" role="alert"><p><strong>${refusal}</strong></p></div>
% else:
${j.busy_note(busy)}
% endif
% endif
<section class="card" id="import-job" aria-labelledby="h-progress"
  data-status-url="${ui.url_for('import_status', job=job.id)}" data-running="${'1' if job.is_running else '0'}"
  data-last-error="${last_error}" data-shown="${len(errors)}" data-max-shown="${shown}">
<h2 id="h-progress">Progress</h2>
% if job.is_running:
<p id="import-state" role="status">${verb} every row… This page updates itself; you may leave it and come back.</p>
<p class="progress"><label for="import-progress" id="import-count">${'{:,}'.format(done)} of ${'{:,}'.format(total) if total is not None else '…'} rows checked</label>
<progress id="import-progress" max="${total or 1}" value="${min(done, total or 0)}"></progress>
<span id="import-errors-count">${'{:,}'.format(job.error_count)} error(s) so far</span></p>
<p><a href="${ui.url_for('import_job', job=job.id)}">Check again</a></p>
% elif job.state == 'imported':
<p class="flash" role="status">${job.result}</p>
<p><a href="${ui.url_for('phones')}">See the phones</a> · <a href="${ui.url_for('extensions')}">See the extensions</a></p>
% elif job.state == 'failed' or job.error_count:
<p class="alert" role="alert"><strong>Nothing was imported.</strong>
% if job.problem:
${job.problem}
% else:
${'{:,}'.format(job.error_count)} error(s) in ${'{:,}'.format(total or 0)} row(s). Correct the file and check it again.
% endif
</p>
% elif not total:
<p class="alert" role="alert"><strong>The file has no rows below its header; there is nothing to import.</strong></p>
% else:
<p class="flash" role="status">Every row is good: ${'{:,}'.format(total)} row(s).</p>
<form method="post" action="${ui.url_for('import_job', job=job.id)}">
  ${f.csrf()}
  <button type="submit" name="action" value="import" class="primary">Import ${total} row(s)</button>
</form>
% endif
</section>
% if errors or job.is_running:
<section class="card" aria-labelledby="h-errors">
<h2 id="h-errors">Errors</h2>
<ol id="import-errors" class="errors">
% for e in errors:
<li>${'line {}: '.format(e.line) if e.line is not None else ''}${e.message}</li>
% endfor
</ol>
% if job.error_count > len(errors):
<p class="muted">The first ${'{:,}'.format(len(errors))} of ${'{:,}'.format(job.error_count)} errors are listed.</p>
% elif not errors:
<p class="muted" id="import-no-errors">None so far.</p>
% endif
</section>
% endif
% if pasted_text and job.state != 'imported':
<section class="card">
<form method="post" action="${ui.url_for('import')}" enctype="multipart/form-data">
  ${f.csrf()}
  <div class="field"><label for="f-text">The pasted text, to correct and check again</label>
  <textarea id="f-text" name="text" rows="6" spellcheck="false">
${pasted_text}</textarea></div>
  <button type="submit" name="action" value="check">Check this text</button>
</form>
</section>
% endif
% if preview:
<section class="card" aria-labelledby="h-preview">
<h2 id="h-preview">Preview</h2>
<div class="table-wrap"><table id="preview-table">
<thead><tr><th scope="col">Line</th>
% for cell in preview[0][1:]:
<th scope="col">${cell}</th>
% endfor
<th scope="col">Problems</th></tr></thead>
<tbody>
% for row in preview[1:]:
<% line = int(row[0]) %>
<tr${' class="row-error"' if line in by_line else '' | n}>
% for cell in row:
<td>${cell}</td>
% endfor
<td>
% for e in by_line.get(line, []):
<span class="problem">${e}</span><br>
% endfor
</td></tr>
% endfor
</tbody></table></div>
% if total and len(preview) - 1 < total:
<p class="muted">The first ${'{:,}'.format(len(preview) - 1)} rows are shown.</p>
% endif
</section>
% endif

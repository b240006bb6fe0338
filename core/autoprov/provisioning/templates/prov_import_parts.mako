## Pieces shared by the import pages.
<%def name="state_badge(job)">\
<% label, kind = {'checking': ('checking', 'warn'), 'importing': ('importing', 'warn'),
                  'checked': ('errors' if job.error_count else 'checked', 'bad' if job.error_count else 'ok'),
                  'imported': ('imported', 'ok'), 'failed': ('not imported', 'bad')}.get(job.state, (job.state, '')) %>\
<span class="badge ${kind}">${label}</span></%def>

<%def name="busy_note(job)">
<div class="alert" role="alert">
<p><strong>Another import is running; this one was not started and nothing was saved.</strong></p>
% if job:
<p>${job.username} started it at ${job.created.strftime('%H:%M:%S')} UTC (${job.source}):
${'{:,}'.format(job.rows_checked)} of ${'{:,}'.format(job.rows_total) if job.rows_total is not None else '…'} rows checked.
Wait until it has finished, then try again. <a href="${ui.url_for('import_job', job=job.id)}">See its progress</a>.</p>
% else:
<p>It has just finished; try again.</p>
% endif
</div>
</%def>

## A phone's log lines with filters (a GET form on the phone's page).
% if not names:
<p class="muted">The phone has uploaded no log yet.</p>
% else:
<form method="get" action="${ui.url_for('phone', mac=mac)}#logs" class="filters" id="logs" aria-label="Filter log lines">
  <div class="field"><label for="lf">File</label><select id="lf" name="log_file"><option value="">all</option>
% for n in names:
    <option value="${n}"${' selected' if values['log_file'] == n else '' | n}>${n}</option>
% endfor
  </select></div>
  <div class="field"><label for="ll">Level</label><select id="ll" name="log_level">
% for v, t in levels:
    <option value="${v}"${' selected' if values['log_level'] == v else '' | n}>${t}</option>
% endfor
  </select></div>
  <div class="field${' has-error' if error else ''}"><label for="ls">Since</label><input id="ls" name="log_since" value="${values['log_since']}" placeholder="2h, 7d or 2025-01-31T08:00" aria-describedby="ls-msg"${' aria-invalid="true"' if error else '' | n}>
% if error:
  <p class="msg error" id="ls-msg">${error}</p>
% else:
  <p class="msg" id="ls-msg">In the phone's zone, ${zone}</p>
% endif
  </div>
  <div class="field"><label for="lg">Text</label><input id="lg" name="log_grep" type="search" value="${values['log_grep']}"></div>
  <button type="submit">Show</button>
</form>
% if lines:
<pre class="file">\
% for text, incomplete in lines:
${text}${' [incomplete: no newline yet]' if incomplete else ''}
% endfor
</pre>
<p class="muted">The newest ${limit} matching lines, oldest first.</p>
% elif not error:
<p class="muted">No line matches.</p>
% endif
% endif

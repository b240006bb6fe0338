<%inherit file="/admin_layout.mako"/>
<%namespace name="f" file="/admin_forms.mako"/>
<%namespace name="p" file="/prov_phone_fields.mako"/>
<%def name="title()">Phone ${phone.mac}</%def>
<% last = sightings[0] if sightings else None %>
<div class="page-head">
  <h1>Phone <span class="mono">${phone.mac}</span></h1>
  <div class="actions">
    <button type="button" disabled aria-describedby="reread-why">Make it re-read its config</button>
    <a class="button" href="${ui.url_for('phone_delete', mac=phone.mac)}">Remove…</a>
  </div>
</div>
<p class="msg" id="reread-why">${reread[1]}</p>
% if errors:
<p class="alert" role="alert">Nothing was saved: <a href="#h-edit">correct the fields marked in the edit form</a>.</p>
% endif

<div class="grid">
<section class="card" aria-labelledby="h-status">
  <h2 id="h-status">Status</h2>
  <dl class="facts">
    <dt>Model</dt><dd>${model.label if model else phone.model + ' (not installed)'}</dd>
    <dt>Last seen</dt><dd>${last.last_seen.strftime('%Y-%m-%d %H:%M UTC') if last else 'never'}</dd>
    <dt>IP</dt><dd>${last.ip if last and last.ip else '—'}</dd>
    <dt>Firmware</dt><dd>${last.firmware if last and last.firmware else '—'}</dd>
    <dt>Config</dt><dd>
% if drift.state == 'same':
      <span class="badge ok">up to date</span> it has had this config since ${drift.fetched_at.strftime('%Y-%m-%d %H:%M UTC')}
% elif drift.state == 'drifted':
      <span class="badge warn">drifted</span> it has the config served since ${drift.fetched_at.strftime('%Y-%m-%d %H:%M UTC')}; ${drift.detail}
% else:
      <span class="badge">${drift.state}</span> ${drift.detail}
% endif
    </dd>
    <dt>Problems</dt><dd>
% for s in sightings:
%   if s.problem:
      <span class="problem">${s.problem}</span><br>
%   endif
% endfor
% if not any(s.problem for s in sightings):
      none
% endif
    </dd>
% if any(s.flag for s in sightings):
    <dt>Flagged</dt><dd>
%   for s in sightings:
%     if s.flag:
      <span class="problem">${s.flag}</span> <span class="muted">(first seen from ${s.first_ip or '?'}, last from ${s.ip or '?'}: ${s.user_agent})</span><br>
%     endif
%   endfor
    </dd>
% endif
    <dt>Added</dt><dd>${phone.created.strftime('%Y-%m-%d %H:%M UTC')}</dd>
  </dl>
</section>
<section class="card" aria-labelledby="h-lines">
  <h2 id="h-lines">Lines</h2>
% if line_rows:
  <ol>
% for line in line_rows:
    <li><a href="${ui.url_for('extension', user_id=line.extension.user_id)}">${line.extension.user_id}</a> ${line.extension.display_name if line.extension.display_name != line.extension.user_id else ''}
%   if model and line.position > model.line_count:
      <span class="badge bad">the ${model.label} has ${model.line_count} line(s): not served</span>
%   endif
    </li>
% endfor
  </ol>
% else:
  <p class="muted">No lines: the phone boots but registers no extension.</p>
% endif
</section>
</div>

<section class="card" aria-labelledby="h-edit">
<h2 id="h-edit">Edit</h2>
${f.form_error(errors.get(''))}
<form method="post" action="${ui.url_for('phone', mac=phone.mac)}" novalidate>
  ${f.csrf()}
  ${p.fields(values, errors, slots, models, extensions, False)}
  <button type="submit" class="primary">Save</button>
</form>
</section>

<section class="card" aria-labelledby="h-files">
<div class="page-head">
<h2 id="h-files">Files it gets</h2>
% if not revealed and any(f_.secrets for f_, _ in files):
<form method="post" action="${ui.url_for('phone_reveal', mac=phone.mac)}">
  ${f.csrf()}
  <button type="submit">Reveal secrets</button>
</form>
% elif revealed:
<a class="button" href="${ui.url_for('phone', mac=phone.mac)}">Hide secrets</a>
% endif
</div>
% if not files:
<p class="muted">Its model is not installed, so nothing can be rendered.</p>
% endif
% for file, body in files:
<details${' open' if file.per_phone else '' | n}>
  <summary><span class="mono">${file.name}</span>${' (this phone\'s own)' if file.per_phone else ' (shared by the model)'}</summary>
% if file.error:
  <p class="alert">It cannot be rendered now: ${file.error}</p>
% else:
  <pre class="file">${body}</pre>
% endif
</details>
% endfor
</section>

% for title, html in sections:
<section class="card">
<h2>${title}</h2>
${html | n}
</section>
% endfor

<section class="card" aria-labelledby="h-seen">
<h2 id="h-seen">Requests seen</h2>
% if sightings:
<div class="table-wrap"><table>
<thead><tr><th scope="col">Last</th><th scope="col">Count</th><th scope="col">User-Agent</th><th scope="col">Last path</th></tr></thead>
<tbody>
% for s in sightings:
<tr><td class="nowrap">${s.last_seen.strftime('%Y-%m-%d %H:%M')}</td><td>${s.count}</td><td>${s.user_agent}</td><td class="mono">${s.last_path}</td></tr>
% endfor
</tbody></table></div>
% else:
<p class="muted">Not seen yet. Power it on: it asks for its config at boot.</p>
% endif
</section>

<section class="card" aria-labelledby="h-changes">
<h2 id="h-changes">Changes made here</h2>
% if changes:
<div class="table-wrap"><table>
<thead><tr><th scope="col">When (UTC)</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">Details</th></tr></thead>
<tbody>
% for e in changes:
<tr><td class="nowrap">${e.at.strftime('%Y-%m-%d %H:%M')}</td><td>${e.username}</td><td>${e.action}</td><td><pre class="details">${e.details}</pre></td></tr>
% endfor
</tbody></table></div>
<p><a href="${ui.url_for('audit', _query={'q': phone.mac})}">The whole audit trail of this phone</a></p>
% else:
<p class="muted">None recorded.</p>
% endif
</section>

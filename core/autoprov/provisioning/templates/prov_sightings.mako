<%inherit file="/admin_layout.mako"/>
<%def name="title()">Sightings</%def>
<h1>Phones seen, not yet added</h1>
<p class="muted">Every phone that asked this server for its config but is not in the database, newest first. Add one and it boots with its extension the next time it asks.</p>
<div class="table-wrap">
<table id="sightings-table">
<thead><tr><th scope="col">MAC</th><th scope="col">Model</th><th scope="col">Last seen (UTC)</th><th scope="col" class="hide-narrow">IP</th><th scope="col" class="hide-narrow">Firmware</th><th scope="col"><span class="hide-narrow">Action</span></th></tr></thead>
<tbody>
% for s in rows:
<tr>
  <td class="mono">${s.mac}</td>
  <td>${models[s.model].label if s.model in models else (s.model or 'unknown')}<br><span class="muted">${s.user_agent}</span></td>
  <td class="nowrap">${s.last_seen.strftime('%Y-%m-%d %H:%M')}</td>
  <td class="hide-narrow">${s.ip or '—'}</td>
  <td class="hide-narrow">${s.firmware or '—'}</td>
  <td><a class="button primary" href="${ui.url_for('phone_new', _query={'mac': s.mac, 'model': s.model or ''})}" aria-label="Add phone ${s.mac}">Add this phone</a></td>
</tr>
% endfor
% if not rows:
<tr><td colspan="6" class="muted">None: every phone seen is in the database.</td></tr>
% endif
</tbody>
</table>
</div>
% if anonymous:
<h2 class="spaced">Requests without a MAC that had a problem</h2>
<div class="table-wrap"><table>
<thead><tr><th scope="col">Last seen</th><th scope="col">User-Agent</th><th scope="col">IP</th><th scope="col">Problem</th></tr></thead>
<tbody>
% for s in anonymous:
<tr><td class="nowrap">${s.last_seen.strftime('%Y-%m-%d %H:%M')}</td><td>${s.user_agent}</td><td>${s.ip or '—'}</td><td class="problem">${s.problem}</td></tr>
% endfor
</tbody></table></div>
% endif

<%inherit file="/admin_layout.mako"/>
<%def name="title()">Fleet</%def>
<h1>Fleet</h1>
<div class="grid">
  <section class="card"><h2>Phones</h2><p class="stat">${total}</p><p class="muted">${seen} seen at least once</p></section>
  <section class="card"><h2>With a problem</h2><p class="stat">${len(problems)}</p></section>
  <section class="card"><h2>Not seen for ${days} days</h2><p class="stat">${stale_count}</p>
    <form method="get" class="filters"><div class="field"><label for="days">Days</label><input id="days" name="days" type="number" min="1" max="3650" value="${days}"></div><button type="submit">Show</button></form>
  </section>
  <section class="card"><h2>Config drifted</h2>
% if drift_known:
    <p class="stat">${len(drifted)}</p>
% else:
    <p class="stat">?</p><p class="muted">Unknown: sightings do not record which config a phone fetched.</p>
% endif
  </section>
</div>
<div class="grid">
<section class="card"><h2>Per model</h2>
<table><thead><tr><th scope="col">Model</th><th scope="col">Phones</th></tr></thead><tbody>
% for name, count in sorted(by_model.items()):
<tr><td><a href="${ui.url_for('phones', _query={'model': name})}">${models[name].label if name in models else name + ' (not installed)'}</a></td><td>${count}</td></tr>
% endfor
% if not by_model:
<tr><td colspan="2" class="muted">No phones yet.</td></tr>
% endif
</tbody></table></section>
<section class="card"><h2>Per firmware (last seen)</h2>
<table><thead><tr><th scope="col">Model</th><th scope="col">Firmware</th><th scope="col">Phones</th></tr></thead><tbody>
% for (model, version), count in sorted(firmware.items()):
<tr><td>${models[model].label if model in models else model}</td><td>${version}</td><td>${count}</td></tr>
% endfor
% if not firmware:
<tr><td colspan="3" class="muted">No phone seen yet.</td></tr>
% endif
</tbody></table></section>
</div>
% if problems:
<section class="card"><h2>Phones with a problem</h2>
<div class="table-wrap"><table><thead><tr><th scope="col">MAC</th><th scope="col">Problem</th><th scope="col">Last seen</th></tr></thead><tbody>
% for s in problems:
<tr><td class="mono"><a href="${ui.url_for('phone', mac=s.mac)}">${s.mac}</a></td><td class="problem">${s.problem}</td><td class="nowrap">${s.last_seen.strftime('%Y-%m-%d %H:%M')}</td></tr>
% endfor
</tbody></table></div></section>
% endif
% if drifted:
<section class="card"><h2>Config drifted</h2><ul>
% for phone, state in drifted:
<li><a class="mono" href="${ui.url_for('phone', mac=phone.mac)}">${phone.mac}</a> (has had its config since ${state.fetched_at.strftime('%Y-%m-%d %H:%M')})</li>
% endfor
</ul></section>
% endif
% if stale:
<section class="card"><h2>Not seen for ${days} days${" (the first 500)" if stale_count > 500 else ""}</h2><p>
% for phone in stale:
<a class="mono" href="${ui.url_for('phone', mac=phone.mac)}">${phone.mac}</a>
% endfor
</p></section>
% endif

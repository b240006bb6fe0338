<%inherit file="/admin_layout.mako"/>
<%namespace name="f" file="/admin_forms.mako"/>
<%def name="title()">Routes</%def>
<div class="page-head">
  <h1>Incoming-call routes</h1>
  <a class="button primary" href="${ui.url_for('route_new')}">Add a route</a>
</div>
<section class="card" aria-labelledby="h-try">
<h2 id="h-try">Which route would this number take now?</h2>
<form method="get" action="${ui.url_for('routes')}" class="filters">
  <div class="field"><label for="number">Dialled number (DID)</label><input id="number" name="number" value="${number}" inputmode="tel"></div>
  <button type="submit">Check</button>
</form>
% if tested is not None:
<p role="status" id="route-answer">
% if chosen is not None:
  ${tested} now (${when.strftime('%Y-%m-%d %H:%M UTC')}) takes <a href="${ui.url_for('route', route_id=chosen.id)}">route ${chosen.id}</a>: ${chosen.pattern} → ${chosen.dest_type} <strong>${chosen.destination}</strong>${(' (else ' + chosen.fallback_type + ' ' + chosen.fallback + ')') if chosen.fallback else ''}.
% else:
  No route takes ${tested} now (${when.strftime('%Y-%m-%d %H:%M UTC')}): the script leaves the call to the dialplan.
% endif
</p>
% endif
</section>
<div class="table-wrap"><table id="routes-table">
<thead><tr><th scope="col">#</th><th scope="col">Priority</th><th scope="col">Pattern</th><th scope="col">Destination</th><th scope="col">When</th><th scope="col" class="hide-narrow">Description</th></tr></thead>
<tbody>
% for r in rows:
<tr${' class="chosen"' if chosen is not None and chosen.id == r.id else '' | n}>
<td><a href="${ui.url_for('route', route_id=r.id)}">${r.id}</a></td><td>${r.priority}</td><td class="mono">${r.pattern}</td>
<td>${r.dest_type} ${r.destination}${(' / else ' + r.fallback_type + ' ' + r.fallback) if r.fallback else ''}</td>
<td>${' '.join(x for x in (r.days, (r.start or '00:00') + '–' + (r.end or '24:00') if r.start or r.end else '', r.time_zone) if x) or 'always'}</td>
<td class="hide-narrow">${r.description}</td></tr>
% endfor
% if not rows:
<tr><td colspan="6" class="muted">No routes yet.</td></tr>
% endif
</tbody></table></div>
<p class="muted">Tried lowest priority first, then the most specific pattern, as Asterisk would; times in ${zone} unless a route has its own zone.</p>

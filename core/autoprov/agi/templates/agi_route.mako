<%inherit file="/admin_layout.mako"/>
<%namespace name="f" file="/admin_forms.mako"/>
<%def name="title()">${'Route %d' % route_id if route_id else 'Add a route'}</%def>
<section class="card">
<h1>${'Route %d' % route_id if route_id else 'Add a route'}</h1>
% if errors:
<p class="alert" role="alert">Nothing was saved: correct the fields marked below.</p>
% endif
<form method="post" action="${ui.url_for('route', route_id=route_id) if route_id else ui.url_for('route_new')}" novalidate>
  ${f.csrf()}
  <div class="lines">
  ${f.field('pattern', 'DID or pattern', values['pattern'], errors.get('pattern'), required=True, hint='5551000, or _555XXXX, _X.')}
  ${f.field('priority', 'Priority', values['priority'], errors.get('priority'), hint='Lower is tried first', attrs='inputmode="numeric"')}
  ${f.select('dest_type', 'Destination type', [(t, t) for t in dest_types], values['dest_type'], errors.get('dest_type'))}
  ${f.field('destination', 'Destination', values['destination'], errors.get('destination'), required=True, hint='1001; a group 1001,1002; or +15551234')}
  ${f.field('ring_timeout', 'Ring for (seconds)', values['ring_timeout'], errors.get('ring_timeout'), attrs='inputmode="numeric"')}
  </div>
  <fieldset><legend>When (empty: always)</legend>
  <div class="lines">
  ${f.field('days', 'Days', values['days'], errors.get('days'), hint='mon-fri, sat,sun')}
  ${f.field('start', 'From', values['start'], errors.get('start'), hint='HH:MM')}
  ${f.field('end', 'To', values['end'], errors.get('end'), hint='HH:MM, may be past midnight')}
  ${f.field('time_zone', 'Time zone', values['time_zone'], errors.get('time_zone'), hint='Empty: the site\'s')}
  </div>
  </fieldset>
  <fieldset><legend>If nobody answers</legend>
  <div class="lines">
  ${f.select('fallback_type', 'Fallback type', [('', 'none')] + [(t, t) for t in dest_types], values['fallback_type'], errors.get('fallback_type'))}
  ${f.field('fallback', 'Fallback destination', values['fallback'], errors.get('fallback'))}
  </div>
  </fieldset>
  ${f.field('description', 'Description', values['description'], errors.get('description'))}
  <div class="actions">
    <button type="submit" class="primary">Save</button>
% if route_id:
    <button type="submit" name="action" value="delete" class="danger">Remove</button>
% endif
    <a href="${ui.url_for('routes')}">Cancel</a>
  </div>
</form>
</section>

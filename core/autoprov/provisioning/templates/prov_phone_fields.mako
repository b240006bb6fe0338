## The fields of a phone, shared by the add form and a phone's edit form.
<%namespace name="f" file="/admin_forms.mako"/>
<%def name="fields(values, errors, slots, models, extensions, new)">
% if new:
${f.field('mac', 'MAC address', values['mac'], errors.get('mac'), required=True, hint='12 hex digits, as on the label under the phone; colons or dashes are fine', attrs='autocomplete="off" autocapitalize="none" spellcheck="false" autofocus')}
% endif
${f.select('model', 'Model', [('', 'Choose a model')] + [(name, '%s (%d line%s)' % (m.label, m.line_count, '' if m.line_count == 1 else 's')) for name, m in models.items()], values['model'], errors.get('model'), required=True)}
<fieldset class="lines">
  <legend>Lines (extensions, line 1 first)</legend>
% for i in range(1, slots + 1):
<% value = values['lines'][i - 1] if i <= len(values['lines']) else '' %>
${f.field('line%d' % i, 'Line %d' % i, value, errors.get('line%d' % i), hint=None, attrs='list="extension-list" autocomplete="off" inputmode="text"', required=(i == 1 and new))}
% endfor
% if errors.get('lines'):
  <p class="msg error" role="alert">${errors['lines']}</p>
% endif
</fieldset>
<datalist id="extension-list">
% for e in extensions:
  <option value="${e.user_id}">${e.display_name}</option>
% endfor
</datalist>
<details${' open' if values['time_zone'] or values['notes'] or errors.get('time_zone') or errors.get('notes') else '' | n}>
<summary>More: time zone, notes</summary>
${f.field('time_zone', 'Time zone', values['time_zone'], errors.get('time_zone'), hint='An IANA name such as Europe/London; empty: the site\'s')}
${f.textarea('notes', 'Notes', values['notes'], errors.get('notes'))}
</details>
</%def>

<%inherit file="/admin_layout.mako"/>
<%namespace name="f" file="/admin_forms.mako"/>
<%def name="title()">${'Add an extension' if new else 'Extension ' + values['user_id']}</%def>
<section class="card">
<div class="page-head">
<h1>${'Add an extension' if new else 'Extension ' + values['user_id']}</h1>
% if not new:
<a class="button" href="${ui.url_for('extension_delete', user_id=values['user_id'])}">Remove…</a>
% endif
</div>
${f.form_error(errors.get(''))}
% if errors:
<p class="alert" role="alert">Nothing was saved: correct the fields marked below.</p>
% endif
<form method="post" action="${ui.url_for('extension_new') if new else ui.url_for('extension', user_id=values['user_id'])}" novalidate>
  ${f.csrf()}
  <input type="hidden" name="back" value="${back}">
% if new:
  ${f.field('user_id', 'Extension (SIP user)', values['user_id'], errors.get('user_id'), required=True, hint='Letters, digits and _.+- as in Asterisk', attrs='autocomplete="off" autofocus')}
% endif
  <div class="lines">
  ${f.field('first_name', 'First name', values['first_name'], errors.get('first_name'))}
  ${f.field('last_name', 'Last name', values['last_name'], errors.get('last_name'))}
  </div>
  ${f.field('secret', 'SIP password', values['secret'], errors.get('secret'), type='password', hint='Empty: a random one' if new else 'Empty: keep the current one', attrs='autocomplete="new-password"')}
  ${f.checkbox('in_directory', 'Listed in the company directory', values['in_directory'])}
  <details${' open' if errors.get('mailbox') or errors.get('server') or errors.get('port') or values['server'] or values['mailbox'] else '' | n}>
  <summary>More: mailbox, SIP server</summary>
  ${f.field('mailbox', 'Voicemail box', values['mailbox'], errors.get('mailbox'), hint='The number the phone subscribes to, or box@pbx.example.com')}
  ${f.field('server', 'SIP server', values['server'], errors.get('server'), hint='Empty: the site\'s')}
  ${f.field('port', 'SIP port', values['port'], errors.get('port'), hint='Empty: the site\'s', attrs='inputmode="numeric"')}
  </details>
  <div class="actions">
  <button type="submit" class="primary">${'Add extension' if new else 'Save'}</button>
  <a href="${ui.url_for('extensions')}">Cancel</a>
  </div>
</form>
% if not new:
<h2>Phones carrying it</h2>
% if macs:
<ul>
% for mac in macs:
<li><a class="mono" href="${ui.url_for('phone', mac=mac)}">${mac}</a></li>
% endfor
</ul>
% else:
<p class="muted">None.</p>
% endif
% endif
</section>

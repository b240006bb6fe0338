<%inherit file="/admin_layout.mako"/>
<%namespace name="f" file="/admin_forms.mako"/>
<%def name="title()">Log in</%def>
<section class="card narrow">
<h1>Log in</h1>
${f.form_error(error)}
<form method="post" action="${ui.url_for('login')}">
  <input type="hidden" name="csrf" value="${csrf}">
  <input type="hidden" name="next" value="${next_url}">
  ${f.field('username', 'User name', username, required=True, attrs='autocomplete="username" autofocus autocapitalize="none"')}
  ${f.field('password', 'Password', '', type='password', required=True, attrs='autocomplete="current-password"')}
  <button type="submit" class="primary">Log in</button>
</form>
<p class="muted">Accounts are made with <code>autoprov admin create-user</code>.</p>
</section>

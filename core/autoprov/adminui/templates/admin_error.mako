<%inherit file="/admin_layout.mako"/>
<%def name="title()">${heading}</%def>
<section class="card narrow">
<h1>${heading}</h1>
<p>${message}</p>
% if login_link:
<p><a class="button primary" href="${ui.url_for('login')}">Log in</a></p>
% endif
</section>

## The layout every admin page inherits: header with navigation, the one-time message, the page's body.
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${self.title()} · autoprov admin</title>
<link rel="stylesheet" href="${ui.url_for('static', name='admin.css')}">
<script src="${ui.url_for('static', name='admin.js')}" defer></script>
${self.head()}
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="${ui.url_for('index')}">autoprov</a>
% if ui.user is not None:
  <nav aria-label="Main">
    <ul>
% for title, url, current in ui.nav():
      <li><a href="${url}"${' aria-current="page"' if current else '' | n}>${title}</a></li>
% endfor
    </ul>
  </nav>
  <form method="post" action="${ui.url_for('logout')}" class="logout">
    <input type="hidden" name="csrf" value="${ui.csrf}">
    <span class="who">${ui.user.username}</span>
    <button type="submit" class="link">Log out</button>
  </form>
% endif
</header>
<main id="main" tabindex="-1">
% if ui.flash:
  <p class="flash" role="status">${ui.flash}</p>
% endif
${next.body()}
</main>
</body>
</html>
<%def name="title()">Admin</%def>
<%def name="head()"></%def>

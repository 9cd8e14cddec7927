"""The dashboard's sign-in page: two small forms (a member's e-mail and password; the operator's master key).

Plain, accessible HTML (labelled fields, autocomplete hints, the message announced to screen readers), with
no script, styled by the dashboard's own stylesheet (the page works without it). Every value written into the
page is escaped.
"""

from __future__ import annotations

from html import escape

__all__ = ["sign_in_page"]

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · farebox</title>
<link rel="icon" href="/dashboard/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/dashboard/static/dashboard.css">
</head>
<body class="sign-in">
<header class="top"><span class="brand">farebox</span></header>
<main>
<h1>Sign in to farebox</h1>
{message}<div class="sign-in-forms">
<form method="post" action="/dashboard/sign-in" aria-labelledby="member-heading">
<h2 id="member-heading">Member</h2>
<input type="hidden" name="csrf_token" value="{csrf}">
<input type="hidden" name="next" value="{next}">
<p><label for="email">E-mail address</label><br>
<input id="email" name="email" type="email" autocomplete="username" required value="{email}"{focus}></p>
<p><label for="password">Password</label><br>
<input id="password" name="password" type="password" autocomplete="current-password" required></p>
<p><button type="submit">Sign in</button></p>
</form>
<form method="post" action="/dashboard/sign-in" aria-labelledby="operator-heading">
<h2 id="operator-heading">Operator</h2>
<input type="hidden" name="csrf_token" value="{csrf}">
<input type="hidden" name="next" value="{next}">
<p><label for="master_key">Master key</label><br>
<input id="master_key" name="master_key" type="password" autocomplete="off" required></p>
<p><button type="submit">Sign in with the master key</button></p>
</form>
</div>
</main>
</body>
</html>
"""


def sign_in_page(*, csrf: str, next_path: str, email: str = "", message: str | None = None) -> str:
    """The page, with the form's CSRF token, where to go after signing in, the e-mail typed so far and a message."""
    shown = f'<p role="alert">{escape(message)}</p>\n' if message else ""
    return _PAGE.format(
        message=shown,
        csrf=escape(csrf),
        next=escape(next_path),
        email=escape(email),
        focus="" if email else " autofocus",
    )

"""The web UI (operators, admins, managers) and the JSON API, on Starlette with Jinja2 pages.

`ivr.web.app.create_app(...)` builds the application; `ivr web` serves it. Area modules: operator
(queues and the account card), admin / admin_data / admin_prompts, reports, api; logic without
HTTP lives in tasks (callback tasks), card (the account card's data), forms (admin validation)
and auth (passwords, tokens, CSRF, rate limiting).
"""

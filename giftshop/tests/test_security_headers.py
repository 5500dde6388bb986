"""Every HTML page sends a Content-Security-Policy, and the API docs run on this site's own copy of Swagger UI."""

import re

import pytest

HTML_PAGES = ["/", "/login/", "/register/", "/password-reset/", "/admin/login/", "/mediastore/docs", "/api/v2/docs"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", HTML_PAGES)
def test_every_html_page_sends_a_content_security_policy(client, path):
    response = client.get(path, follow=True)
    assert response.status_code == 200
    assert "text/html" in response["Content-Type"]
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"


@pytest.mark.django_db
def test_the_redeem_page_keeps_its_own_stricter_policy(client):
    policy = client.get("/redeem/")["Content-Security-Policy"]
    assert "style-src" not in policy  # its own: default-src 'self' covers styles too
    assert "form-action 'self'" in policy


@pytest.mark.parametrize("path", ["/mediastore/docs", "/api/v2/docs"])
def test_the_api_docs_load_swagger_ui_from_this_site_with_no_inline_script(client, path):
    html = client.get(path).content.decode()
    sources = re.findall(r"<(?:script|link)[^>]+(?:src|href)=\"([^\"]+)\"", html)
    assert any("swagger-ui" in source for source in sources)
    assert all(source.startswith(("/static/", "?", path)) for source in sources), sources
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", html) is None  # no inline script body


def test_the_docs_render_in_a_browser_without_a_policy_violation(chromium, live_server):
    context = chromium.new_context(base_url=live_server.url)
    page = context.new_page()
    problems = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("request", lambda request: request.url.startswith(live_server.url) or problems.append(request.url))
    page.goto("/mediastore/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    assert "Giftshop API" in page.inner_text(".swagger-ui .info .title")
    assert page.locator(".opblock").count() > 10  # the operations came from the schema
    context.close()
    assert problems == []

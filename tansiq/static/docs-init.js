// Starts Swagger UI on /docs from vendored files (no inline script, no network).
// "Try it out" runs with the browser's session cookie; a state-changing request made with it
// must carry the session's CSRF token, which GET /api/session tells (asked afresh each time:
// the session may have changed since the page loaded).
var SAFE_METHODS = ["GET", "HEAD", "OPTIONS"];

function withCsrfToken(req) {
  var method = (req.method || "GET").toUpperCase();
  if (SAFE_METHODS.indexOf(method) >= 0 || new URL(req.url, location.href).origin !== location.origin) {
    return req;
  }
  return fetch("/api/session", { credentials: "same-origin", cache: "no-store" })
    .then(function (r) { return r.ok ? r.json() : {}; })
    .catch(function () { return {}; })
    .then(function (me) {
      if (me.csrf) {
        req.headers["X-CSRF-Token"] = me.csrf;
      }
      return req;
    });
}

// The bar above the docs: who is signed in, and a Log out button posting to /logout with the
// session's CSRF token (the answer sends the browser to /login); else a link to log in.
function showSession(bar, me) {
  bar.textContent = "";
  if (me && me.via === "session" && me.csrf) {
    var form = document.createElement("form");
    form.method = "post";
    form.action = "/logout";
    var who = document.createElement("span");
    var name = document.createElement("bdi"); // an Arabic name keeps its own direction
    name.textContent = me.username;
    who.append("signed in as ", name, " \u2014 ");
    var csrf = document.createElement("input");
    csrf.type = "hidden";
    csrf.name = "csrf";
    csrf.value = me.csrf;
    var button = document.createElement("button");
    button.type = "submit";
    button.textContent = "Log out";
    form.append(who, csrf, button);
    bar.append(form);
  } else {
    var login = document.createElement("a");
    login.href = "/login?next=/docs";
    login.textContent = "Log in";
    bar.append("not signed in \u2014 ", login);
  }
  bar.hidden = false;
}

function loadSession() {
  var bar = document.getElementById("session-bar");
  if (!bar) {
    return;
  }
  fetch("/api/session", { credentials: "same-origin", cache: "no-store" })
    .then(function (r) { return r.ok ? r.json() : null; })
    .catch(function () { return null; })
    .then(function (me) { showSession(bar, me); });
}

window.addEventListener("load", function () {
  loadSession();
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    requestInterceptor: withCsrfToken,
  });
});

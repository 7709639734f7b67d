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

window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    requestInterceptor: withCsrfToken,
  });
});

// Starts Swagger UI on the app's own OpenAPI document (a file, so the page's CSP needs no
// inline script). URLs are relative to /docs, so the page works behind any prefix.
"use strict";
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.json", window.location.href).href,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // the default badge loads an image from the public validator: nothing leaves this host
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
});

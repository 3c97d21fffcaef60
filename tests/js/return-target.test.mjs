// Where the waiting page sends an admitted visitor (returnTarget in waiting-logic.mjs): back to
// the page they asked for on the room's own origins, never anywhere else.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { MAX_RETURN_TO, returnTarget } from "../../waitingroom/static/waiting-logic.mjs";

const ORIGIN = "https://shop.example/";
const HOME = "https://shop.example/";

describe("returnTarget", () => {
  it("sends the visitor back to the path and query they asked for", () => {
    assert.equal(returnTarget("/api/hello?x=1", ORIGIN, []), "https://shop.example/api/hello?x=1");
    assert.equal(returnTarget("/cart#top", ORIGIN), "https://shop.example/cart#top");
    assert.equal(
      returnTarget("https://shop.example/a?b=1", ORIGIN, []), "https://shop.example/a?b=1");
  });

  it("goes to the origin itself without a return_to", () => {
    for (const none of [null, undefined, ""]) {
      assert.equal(returnTarget(none, ORIGIN, []), HOME);
    }
    assert.equal(returnTarget("/x", "https://shop.example/launch/", []),
      "https://shop.example/x");
  });

  it("accepts the room's other allowed origins, and only those", () => {
    const allowed = ["https://www.shop.example", "http://127.0.0.1:8000"];
    assert.equal(returnTarget("https://www.shop.example/p", ORIGIN, allowed),
      "https://www.shop.example/p");
    assert.equal(returnTarget("http://127.0.0.1:8000/p", ORIGIN, allowed),
      "http://127.0.0.1:8000/p");
    assert.equal(returnTarget("http://127.0.0.1:8001/p", ORIGIN, allowed), HOME);
    assert.equal(returnTarget("http://shop.example/p", ORIGIN, allowed), HOME); // not https
    assert.equal(returnTarget("https://www.shop.example/p", ORIGIN, ["not a url"]), HOME);
  });

  it("ignores every open-redirect attempt", () => {
    const attempts = [
      "https://evil.example/",
      "https://shop.example.evil.example/",
      "https://shop.example@evil.example/",
      "https://user:pass@shop.example/",
      "//evil.example/",
      "///evil.example/",
      "/\\evil.example/",
      "\\\\evil.example",
      "\\/evil.example",
      "/\t/evil.example",
      "/\n/evil.example",
      "javascript:alert(1)",
      "JaVaScRiPt:alert(1)",
      " javascript:alert(1)",
      "data:text/html,<script>alert(1)</script>",
      "https:evil.example",
      "evil.example",
      "ftp://shop.example/",
    ];
    for (const attempt of attempts) {
      assert.equal(returnTarget(attempt, ORIGIN, []), HOME, attempt);
    }
  });

  it("ignores a return_to longer than 2 KB", () => {
    const ok = "/" + "a".repeat(MAX_RETURN_TO - 1);
    assert.equal(MAX_RETURN_TO, 2048);
    assert.equal(returnTarget(ok, ORIGIN, []), "https://shop.example" + ok);
    assert.equal(returnTarget(ok + "a", ORIGIN, []), HOME);
  });

  it("has nowhere to go without a usable origin", () => {
    assert.equal(returnTarget("/x", "", []), null);
    assert.equal(returnTarget("/x", "javascript:alert(1)", []), null);
  });
});

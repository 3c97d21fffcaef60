// The page's words (waitingroom/static/waiting-i18n.mjs and static/locales/): how a language is
// chosen, how a text is translated and filled, and that every language has every text the page
// shows. Run by `node --test tests/js/`.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { describe, it } from "node:test";

import { pickLanguage, plain, textKey, translator } from "../../waitingroom/static/waiting-i18n.mjs";
import { etaText, waitingTexts } from "../../waitingroom/static/waiting-logic.mjs";

const STATIC = new URL("../../waitingroom/static/", import.meta.url);
const read = (name) => readFileSync(new URL(name, STATIC), "utf8");
const LOCALES = Object.fromEntries(
  readdirSync(new URL("locales/", STATIC)).map((f) => [
    f.replace(/\.json$/, ""), JSON.parse(read("locales/" + f)),
  ]),
);
const ja = translator(LOCALES.ja.strings, "ja");

/** Every English text the page can show: t("...") in its scripts, data-i18n in its markup. */
function pageTexts() {
  const texts = new Set();
  for (const file of ["waiting.js", "waiting-logic.mjs"]) {
    const src = read(file);
    for (const m of src.matchAll(/\bt\(\s*"((?:[^"\\]|\\.)*)"/g)) { texts.add(JSON.parse(`"${m[1]}"`)); }
    for (const m of src.matchAll(/plural\([^,]+, "([^"]+)", "([^"]+)"/g)) {
      texts.add(m[1]);
      texts.add(m[2]);
    }
  }
  const markup = read("queue.html");
  for (const m of markup.matchAll(/<[^>]*\bdata-i18n(?=[\s>])[^>]*>([^<]+)</g)) { texts.add(textKey(m[1])); }
  for (const m of markup.matchAll(/aria-label="([^"]+)"\s+data-i18n-label/g)) { texts.add(m[1]); }
  return texts;
}

describe("pickLanguage", () => {
  const have = ["en", "ja"];
  it("takes the visitor's own choice first", () => {
    assert.equal(pickLanguage("en", ["ja-JP", "ja"], have), "en");
  });
  it("then the browser's languages in order, by full tag or primary subtag", () => {
    assert.equal(pickLanguage(null, ["ja-JP", "en-US"], have), "ja");
    assert.equal(pickLanguage(null, ["fr-FR", "ja"], have), "ja");
    assert.equal(pickLanguage(null, ["en-GB", "ja"], have), "en");
    assert.equal(pickLanguage(null, ["JA"], have), "ja");
  });
  it("falls back to English for a choice or languages the page does not have", () => {
    assert.equal(pickLanguage("xx", ["fr", "de"], have), "en");
    assert.equal(pickLanguage(null, undefined, have), "en");
    assert.equal(pickLanguage(null, [], ["ja"]), "ja");
  });
});

describe("translator", () => {
  it("translates, fills {names} and keeps English where a text is missing", () => {
    const t = translator({ "Hello {name}": "こんにちは {name}" }, "ja");
    assert.equal(t("Hello {name}", { name: "<b>" }), "こんにちは <b>");
    assert.equal(t("Untranslated {n}", { n: 3 }), "Untranslated 3");
    assert.equal(t.lang, "ja");
    assert.equal(plain("{a} and {b}", { a: 1 }), "1 and {b}");
    assert.equal(translator(null)("same"), "same");
  });
  it("folds markup whitespace into the key", () => {
    assert.equal(textKey("  Keep this\n      page open. "), "Keep this page open.");
  });
});

describe("locales", () => {
  it("each is one file with a name and translations that keep their {names}", () => {
    assert.deepEqual(Object.keys(LOCALES).sort(), ["en", "ja"]);
    // English is the page's own words (the script does not load its file)
    assert.deepEqual(LOCALES.en.strings, {});
    for (const [code, locale] of Object.entries(LOCALES)) {
      assert.equal(typeof locale.language_name, "string", code);
      for (const [english, text] of Object.entries(locale.strings)) {
        const names = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
        assert.deepEqual(names(text), names(english), `${code}: ${english}`);
      }
    }
  });
  it("Japanese has every text the page shows, and none it no longer does", () => {
    const texts = pageTexts();
    assert.ok(texts.size > 60, `found ${texts.size} texts`);
    const missing = [...texts].filter((s) => !(s in LOCALES.ja.strings));
    assert.deepEqual(missing, []);
    const stale = Object.keys(LOCALES.ja.strings).filter((s) => !texts.has(s));
    assert.deepEqual(stale, []);
  });
  it("the waiting view reads in Japanese", () => {
    const texts = waitingTexts({ position: 3, eta_seconds: 150 }, 4, ja);
    assert.equal(texts.label, "あなたの順番");
    assert.equal(texts.eta, "約3分");
    assert.equal(texts.summary, "あなたは3番目です。予想待ち時間: 約3分。");
    assert.equal(waitingTexts({ position: 1 }, 1, ja).ahead, "0人 — 次はあなたの番です");
    assert.equal(etaText(600, false, ja), "約7〜15分");
    assert.equal(etaText(3 * 3600, false, ja), "約2〜5時間");
    // and in English without a translator, as before
    assert.equal(etaText(600, false), "about 7\u201315 minutes");
  });
});

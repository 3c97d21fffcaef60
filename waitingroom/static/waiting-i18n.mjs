// The waiting page's words in the visitor's language. The English text is the key: the page and
// its script are written in English, and a language is one file, static/locales/<code>.json,
// `{"language_name": ..., "strings": {English: translation}}`, where a text may hold {names}
// filled from the values it is given. A missing translation shows the English text.
// Imported by the page's script and logic and by node's test runner (tests/js/).

const FIELD = /\{(\w+)\}/g;

/** `text` with each {name} filled from `vars` (a name without a value stays as typed). */
export function plain(text, vars) {
  if (!vars) { return text; }
  return text.replace(FIELD, function (all, name) {
    return Object.prototype.hasOwnProperty.call(vars, name) ? String(vars[name]) : all;
  });
}

/** A translating function over a locale's `strings` (null or {}: English); its `lang` is the
 * language's code (for dates and times). */
export function translator(strings, lang) {
  const table = strings && typeof strings === "object" ? strings : {};
  const t = function (text, vars) {
    const found = Object.prototype.hasOwnProperty.call(table, text) ? table[text] : null;
    return plain(typeof found === "string" && found ? found : text, vars);
  };
  t.lang = lang;
  return t;
}

/**
 * The page's language: the visitor's own choice if the page has it, else the first of the
 * browser's languages (navigator.languages, in the order of its Accept-Language) the page has,
 * by its full tag or its primary one ("ja-JP" -> "ja"), else English.
 */
export function pickLanguage(chosen, preferred, available, fallback = "en") {
  const has = function (code) { return available.indexOf(code) >= 0; };
  if (typeof chosen === "string" && has(chosen)) { return chosen; }
  const tags = Array.isArray(preferred) ? preferred : [];
  for (let i = 0; i < tags.length; i++) {
    const tag = String(tags[i]).toLowerCase();
    if (has(tag)) { return tag; }
    const primary = tag.split("-")[0];
    if (has(primary)) { return primary; }
  }
  return has(fallback) ? fallback : (available[0] || fallback);
}

/** An element's text as a key: its words with the markup's line breaks and indents folded. */
export function textKey(text) {
  return String(text).replace(/\s+/g, " ").trim();
}

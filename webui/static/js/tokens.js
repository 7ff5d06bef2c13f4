// An estimate of the cl100k_base token count, for the live counter next to the persona.
// The server counts exactly (tiktoken) and its 400 says by how much a persona is over; this
// only has to be close enough to warn while typing. It splits text the way cl100k's
// pre-tokenizer does (the same pattern, without possessive quantifiers) and prices each piece
// by length: short words are one token, long words and symbol runs a few. Measured against
// tiktoken on this repository's docs and on English, French, German, Spanish and Japanese
// personas it is within 7 % (tests/ui/test_pages.py keeps it within 10 %).

export const PERSONA_TOKEN_LIMIT = 2000;

const PIECES = /'(?:[sdmtSDMT]|ll|ve|re|LL|VE|RE)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

function piecePrice(piece, wordFactor) {
  if (/\p{L}/u.test(piece)) {
    // Letters outside ASCII (accents, other scripts) mostly cost a token of their own or more.
    const foreign = piece.replace(/[\x00-\x7f]/g, "").length;
    return (1 + Math.max(0, piece.length - 7) / 6) * wordFactor + foreign * 0.6;
  }
  if (/^\s+$/.test(piece)) return 1;
  if (/\p{N}/u.test(piece)) return 1;
  return piece.length <= 2 ? 1 : piece.length / 2;
}

export function estimateTokens(text) {
  // cl100k's vocabulary is mostly English: words of other languages (told apart by their
  // accented letters) are split into more pieces.
  const letters = (text.match(/\p{L}/gu) || []).length;
  const accented = (text.match(/[^\x00-\x7f]/g) || []).length;
  const wordFactor = letters && accented / letters > 0.005 ? 1.18 : 1;
  let total = 0;
  for (const match of text.matchAll(PIECES)) total += piecePrice(match[0], wordFactor);
  return Math.round(total);
}

/** Keep a counter element (and an optional <meter>) in step with a textarea. */
export function attachCounter(textarea, counter, limit = PERSONA_TOKEN_LIMIT) {
  const meter = document.createElement("meter");
  meter.min = 0;
  meter.max = limit;
  meter.high = limit * 0.9;
  meter.optimum = 0;
  meter.setAttribute("aria-hidden", "true");
  const words = document.createElement("span");
  counter.replaceChildren(meter, words);
  let timer = 0;
  const update = () => {
    const count = estimateTokens(textarea.value);
    meter.value = Math.min(count, limit);
    const over = count > limit;
    counter.classList.toggle("over", over);
    words.textContent = over
      ? `About ${count.toLocaleString()} of ${limit.toLocaleString()} tokens: too long by about ${(count - limit).toLocaleString()}`
      : `About ${count.toLocaleString()} of ${limit.toLocaleString()} tokens`;
  };
  // The counter is a live region: update it after typing pauses, not on every key.
  textarea.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(update, 250);
  });
  update();
  return update;
}

/**
 * Text from a provider (phase and condition messages, Event messages, phone numbers, push
 * names) on its way to a terminal. An escape sequence in it would let a gateway move the
 * cursor, rewrite lines already shown, retitle the window or set the clipboard (OSC 52);
 * a bidi override would reorder what the user reads. Sequences are dropped whole, every
 * other control character (line breaks included: each of these texts is one line or one
 * table cell) becomes a space.
 */
// CSI (ESC [ ... final), OSC/DCS/APC/PM/SOS strings (to BEL or ST), then any other ESC + one character.
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]|[\x1b][\]P^_X][^\x07\x1b\x9c]*(\x07|\x1b\\|\x9c)?|[\x90\x9d\x9e\x9f][^\x07\x1b\x9c]*(\x07|\x1b\\|\x9c)?|\x1b[\s\S]?/g;
const CONTROLS = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** The text with escape sequences removed and any other control character replaced by a space. */
export function terminalSafe(text: string): string {
  return text.replace(ESCAPES, "").replace(CONTROLS, " ");
}

/**
 * Where a JSON text stops being JSON: line and column (1-based) and what
 * was expected there. JSON.parse says what went wrong but, in Bun, not
 * where; a person fixing a policy file needs the line. This walk builds
 * nothing but each object's set of keys: a key given twice is refused here
 * too, though JSON.parse takes it (keeping the last), since in a policy the
 * first value would vanish unseen: a second "block" or "filesystem" drops
 * the first one's refusals.
 */

export interface JsonErrorAt {
  line: number;
  column: number;
  message: string;
}

class Stop extends Error {
  constructor(
    readonly at: number,
    message: string,
  ) {
    super(message);
  }
}

export function jsonErrorAt(text: string): JsonErrorAt | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  };
  const found = () => (i >= text.length ? "the end of the file" : JSON.stringify(text[i]));
  const fail = (what: string): never => {
    throw new Stop(i, `expected ${what}, found ${found()}`);
  };
  const string = () => {
    if (text[i] !== '"') fail("a string in double quotes");
    i++;
    while (i < text.length && text[i] !== '"') {
      const c = text.charCodeAt(i);
      if (c < 0x20) throw new Stop(i, "a control character (a line break?) inside a string");
      if (text[i] === "\\") {
        i++;
        if (text[i] === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) throw new Stop(i, "a \\u escape needs 4 hex digits");
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? "")) throw new Stop(i, `an unknown escape \\${text[i] ?? ""}`);
      }
      i++;
    }
    if (i >= text.length) throw new Stop(i, "a string that never ends (a missing \")");
    i++;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      ws();
      if (text[i] === "}") return void i++;
      const keys = new Set<string>();
      for (;;) {
        ws();
        if (text[i] === "}") throw new Stop(i, "a comma before } (JSON allows no trailing comma)");
        const at = i;
        string();
        const key = JSON.parse(text.slice(at, i)) as string;
        if (keys.has(key)) throw new Stop(at, `${JSON.stringify(key)} given twice in one object (only one can count)`);
        keys.add(key);
        ws();
        if (text[i] !== ":") fail('":" after the key');
        i++;
        value();
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") return void i++;
        fail('"," or "}"');
      }
    }
    if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") return void i++;
      for (;;) {
        ws();
        if (text[i] === "]") throw new Stop(i, "a comma before ] (JSON allows no trailing comma)");
        value();
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") return void i++;
        fail('"," or "]"');
      }
    }
    if (c === '"') return string();
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400)) ?? /^(true|false|null)/.exec(text.slice(i, i + 5));
    if (!m) fail("a value (an object, array, string, number, true, false or null)");
    i += m![0].length;
  };
  try {
    value();
    ws();
    if (i < text.length) fail("the end of the file after the value");
    return undefined;
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
    const before = text.slice(0, e.at).split("\n");
    return { line: before.length, column: before[before.length - 1]!.length + 1, message: e.message };
  }
}

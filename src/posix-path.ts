/**
 * POSIX path arithmetic (normalize, join, dirname, relative, resolve), with
 * node:path's results: a test compares the two on every path of a generated
 * corpus (test/posix-path.test.ts). Ours because evaluating node:path costs
 * every start of `bunbox run` ~0.4 ms of CPU, for a few string operations
 * (README.md, "Start-up").
 */

/** The segments of `path` with ".", ".." and empty ones resolved; ".." above the start kept when `relative`. */
function resolveSegments(path: string, relative: boolean): string[] {
  const out: string[] = [];
  for (const seg of path.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (relative) out.push("..");
      continue;
    }
    out.push(seg);
  }
  return out;
}

export function isAbsolute(path: string): boolean {
  return path.startsWith("/");
}

/** "/a//b/../c/" -> "/a/c/": one slash between names, "." and ".." resolved, a trailing slash kept. */
export function normalize(path: string): string {
  if (path.length === 0) return ".";
  const absolute = isAbsolute(path);
  const trailing = path.endsWith("/");
  const joined = resolveSegments(path, !absolute).join("/");
  if (joined.length === 0) return absolute ? "/" : trailing ? "./" : ".";
  return `${absolute ? "/" : ""}${joined}${trailing ? "/" : ""}`;
}

export function join(...parts: string[]): string {
  const joined = parts.filter((p) => p.length > 0).join("/");
  return joined.length === 0 ? "." : normalize(joined);
}

/** The absolute path `parts` name, from the last absolute one (or the working directory). */
export function resolve(...parts: string[]): string {
  let path = "";
  for (let i = parts.length - 1; i >= 0 && !isAbsolute(path); i--) {
    if (parts[i]!.length > 0) path = path.length > 0 ? `${parts[i]}/${path}` : parts[i]!;
  }
  if (!isAbsolute(path)) path = `${process.cwd()}/${path}`;
  return `/${resolveSegments(path, false).join("/")}`;
}

/** Everything before the last name ("/a/b/" -> "/a"), as node:path gives it ("/a//b" -> "/a/", "//a" -> "//"). */
export function dirname(path: string): string {
  if (path.length === 0) return ".";
  // The slash before the last name, scanning back over trailing slashes first.
  let end = -1;
  let inTrailing = true;
  for (let i = path.length - 1; i >= 1; i--) {
    if (path[i] === "/") {
      if (!inTrailing) {
        end = i;
        break;
      }
    } else {
      inTrailing = false;
    }
  }
  if (end === -1) return isAbsolute(path) ? "/" : ".";
  if (isAbsolute(path) && end === 1) return "//";
  return path.slice(0, end);
}

/** The path from `from` to `to` ("" when they are the same). */
export function relative(from: string, to: string): string {
  const a = resolveSegments(resolve(from), false);
  const b = resolveSegments(resolve(to), false);
  let same = 0;
  while (same < a.length && same < b.length && a[same] === b[same]) same++;
  return [...Array<string>(a.length - same).fill(".."), ...b.slice(same)].join("/");
}

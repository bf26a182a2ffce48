/**
 * Tables looked up by names that come from users: syscall names per arch,
 * families, architectures, errno and signal names, size units, option names.
 *
 * An object literal inherits from Object.prototype, so `table["toString"]`
 * finds a function and `"constructor" in table` is true. A policy once
 * allowed the syscall "toString" that way: its "number" was a function, the
 * sort of the numbers gave NaN and the dispatch tree came out scrambled,
 * letting ptrace and mount through. Every such table is made here: without a
 * prototype (a lookup of an unknown name is undefined, whatever the name) and
 * frozen. Its type carries a brand that only nameTable() gives, so that a
 * plain object cannot stand in for one where a NameTable is expected.
 */
declare const NO_PROTOTYPE: unique symbol;

/** A frozen object without a prototype (made by nameTable). */
export type NoPrototype<E> = Readonly<E> & { readonly [NO_PROTOTYPE]: true };

/** name → T, looked up with `table[name]` (undefined for any unknown name). */
export type NameTable<T> = NoPrototype<Record<string, T>>;

/** A frozen copy of `entries` without a prototype. */
export function nameTable<E extends object>(entries: E): NoPrototype<E> {
  return Object.freeze(Object.assign(Object.create(null) as object, entries)) as NoPrototype<E>;
}

/**
 * A name or value as an error message quotes it: a string between quotes
 * as it is (whoever prints the message makes it visible, once: escaping
 * here too would print `\\u001b`), anything else as JSON.
 */
export function quote(v: unknown): string {
  return typeof v === "string" ? `"${v}"` : (JSON.stringify(v) ?? String(v));
}

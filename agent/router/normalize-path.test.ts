import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hostOf, normalizePath } from "./normalize-path.js";

describe("normalizePath", () => {
  it.each([
    // [target, path, query]
    ["/", "/", ""],
    ["/a/b/c", "/a/b/c", ""],
    ["/a/b/", "/a/b/", ""],
    ["/v1/users?id=7&x", "/v1/users", "id=7&x"],
    ["/search?", "/search", ""],
    ["/a?b?c", "/a", "b?c"],
    ["/a?q=1#frag", "/a", "q=1"],
    ["/a#frag?not-a-query", "/a", ""],
    ["/a/../b?x=1", "/b", "x=1"],
    ["/a/./b", "/a/b", ""],
    ["/a/b/..", "/a/", ""],
    ["/a/.", "/a/", ""],
    ["/..", "/", ""],
    ["/../x", "/x", ""],
    ["/../../x/../y", "/y", ""],
    ["/a/%2e%2e/b", "/b", ""],
    ["/a/%2E/b", "/a/b", ""],
    ["/a/.%2e/b", "/b", ""],
    ["/.well-known/x", "/.well-known/x", ""],
    ["/a/..b/c.", "/a/..b/c.", ""],
    ["/a//b///c", "/a/b/c", ""],
    ["//a", "/a", ""],
    ["/a//../b", "/b", ""],
    ["/%7Euser/%41%62%2d%5f", "/~user/Ab-_", ""],
    ["/a%2fb", "/a%2Fb", ""],
    ["/a%2F..%2Fb", "/a%2F..%2Fb", ""],
    ["/%2f/../x", "/x", ""],
    ["/%25", "/%25", ""],
    ["/%252e%252e/x", "/%252e%252e/x", ""],
    ["/caf%c3%a9", "/caf%C3%A9", ""],
    ["/a b", "/a%20b", ""],
    ['/"<>^`{|}', "/%22%3C%3E%5E%60%7B%7C%7D", ""],
    ["/caf\u00e9", "/caf%E9", ""],
    ["/!$&'()*+,;=:@", "/!$&'()*+,;=:@", ""],
    ["/a?q=a\\b", "/a", "q=a\\b"],
  ])("normalizes %j to path %j and query %j", (target, path, query) => {
    expect(normalizePath(target)).toEqual({ path, query });
  });

  it.each([
    ["", "empty"],
    ["*", "asterisk-form"],
    ["http://example.com/a", "absolute-form"],
    ["a/b", "relative"],
    ["?x=1", "query only"],
    ["/a%00b", "an encoded NUL"],
    ["/a%4", "a truncated escape"],
    ["/a%", "a bare percent"],
    ["/a%zz", "a malformed escape"],
    ["/a\\b", "a backslash"],
    ["/a\u0000b", "a raw NUL"],
    ["/a\tb", "a raw tab"],
    ["/a\u007fb", "a raw DEL"],
    ["/a?x=\r\n", "a control character in the query"],
    ["/\u2603", "a character above U+00FF"],
  ])("refuses %j (%s)", (target) => {
    expect(normalizePath(target)).toBeUndefined();
  });

  it("returns an already normal path as the same string", () => {
    const target = "/v1/users/42";
    expect(normalizePath(target)?.path).toBe(target);
  });

  it("gives, for any target, a canonical path or undefined", () => {
    const piece = fc.constantFrom(
      "/",
      "//",
      ".",
      "..",
      "%2e",
      "%2F",
      "%41",
      "%7e",
      "%25",
      "a",
      "~",
      " ",
      "?",
      "#",
      "é",
      "%0",
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
        const result = normalizePath(`/${pieces.join("")}`);
        if (result === undefined) return;
        const { path } = result;
        expect(path.startsWith("/")).toBe(true);
        expect(path).not.toMatch(
          /\/\/|\/\.\.?(\/|$)|[^\x21-\x7e]|%(?![0-9A-F]{2})|%(2[DE]|3[0-9]|[46][1-9A-F]|[57][0-9A]|5F|7E)/,
        );
        expect(normalizePath(path)?.path).toBe(path);
      }),
    );
  });

  it("is idempotent: a normalized path normalizes to itself", () => {
    for (const target of ["/a/%2e%2e/b", "/caf%c3%a9/./x", "/a b//c/..", "/%7e/%2f"]) {
      const once = normalizePath(target)?.path as string;
      expect(normalizePath(once)?.path).toBe(once);
    }
  });
});

describe("hostOf", () => {
  it.each([
    [undefined, ""],
    ["", ""],
    ["example.com", "example.com"],
    ["Example.COM", "example.com"],
    ["example.com:8080", "example.com"],
    ["example.com.", "example.com"],
    ["Example.com.:443", "example.com"],
    ["10.0.0.1:80", "10.0.0.1"],
    ["[::1]:80", "[::1]"],
    ["[::1]", "[::1]"],
    ["[2001:DB8::1]:8443", "[2001:db8::1]"],
  ])("reads %j as %j", (authority, host) => {
    expect(hostOf(authority)).toBe(host);
  });
});

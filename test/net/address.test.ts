// IP addresses for the network policy (src/net/address.ts): the forms a
// sandboxee may write an address in, and the special ranges no allowed name
// may silently lead to.
import { describe, expect, test } from "bun:test";
import { canonical, cidrContains, formatIp, parseCidr, parseIp, parseIpv4Loose, parseIpv6 } from "../../src/net/address.ts";
import { specialRange } from "../../src/net/special.ts";

const ip = (s: string) => {
  const r = parseIp(s);
  if (!r) throw new Error(`test: ${s} does not parse`);
  return r;
};

describe("parsing", () => {
  test("IPv4 dotted quads, strictly: four decimal numbers without leading zeros", () => {
    expect(formatIp(ip("10.0.0.1"))).toBe("10.0.0.1");
    for (const bad of ["10.0.0", "10.0.0.1.2", "010.0.0.1", "256.0.0.1", "0x7f.0.0.1", "1.2.3.-1", "", "a.b.c.d"]) {
      expect(parseIp(bad)).toBeUndefined();
    }
  });

  test("inet_aton's loose forms all mean 127.0.0.1 where glibc says so", () => {
    for (const s of ["127.0.0.1", "127.1", "127.0.1", "2130706433", "0x7f000001", "0x7f.1", "017700000001", "0177.0.0.01"]) {
      expect(formatIp(parseIpv4Loose(s)!)).toBe("127.0.0.1");
    }
    for (const bad of ["127.0.0.256", "4294967296", "1.2.3.4.5", "08", "1..2", "", "example"]) {
      expect(parseIpv4Loose(bad)).toBeUndefined();
    }
    // glibc reads a bare "0x" as zero: an address (refused), not a name.
    expect(formatIp(parseIpv4Loose("0x")!)).toBe("0.0.0.0");
  });

  test("IPv6: compressed forms, an IPv4 tail, and RFC 5952 output", () => {
    expect(formatIp(ip("::"))).toBe("::");
    expect(formatIp(ip("::1"))).toBe("::1");
    expect(formatIp(ip("2001:DB8:0:0:0:0:0:1"))).toBe("2001:db8::1");
    expect(formatIp(ip("fe80::1:0:0:0:1"))).toBe("fe80:0:0:1::1");
    expect(formatIp(ip("1:0:0:2:0:0:0:3"))).toBe("1:0:0:2::3");
    expect(formatIp(ip("::ffff:1.2.3.4"))).toBe("::ffff:102:304");
    for (const bad of [":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "12345::", "::g", "1:2:3:4:5:6:7", "::1.2.3", "fe80::1%eth0", ":1::"]) {
      expect(parseIpv6(bad)).toBeUndefined();
    }
  });

  test("an IPv4-mapped IPv6 address is its IPv4 address", () => {
    expect(formatIp(canonical(ip("::ffff:127.0.0.1")))).toBe("127.0.0.1");
    expect(formatIp(canonical(ip("::ffff:7f00:1")))).toBe("127.0.0.1");
    expect(canonical(ip("::1")).family).toBe(6);
  });

  test("CIDR ranges; host bits must be zero", () => {
    const c = parseCidr("10.0.0.0/8")!;
    expect(cidrContains(c, ip("10.200.3.4"))).toBe(true);
    expect(cidrContains(c, ip("11.0.0.0"))).toBe(false);
    expect(cidrContains(parseCidr("0.0.0.0/0")!, ip("8.8.8.8"))).toBe(true);
    expect(cidrContains(parseCidr("fd00::/8")!, ip("fd12::1"))).toBe(true);
    expect(cidrContains(parseCidr("fd00::/8")!, ip("10.0.0.1"))).toBe(false);
    expect(cidrContains(parseCidr("192.168.0.0/23")!, ip("192.168.1.7"))).toBe(true);
    expect(cidrContains(parseCidr("192.168.0.0/23")!, ip("192.168.2.0"))).toBe(false);
    for (const bad of ["10.1.0.0/8", "10.0.0.0/33", "10.0.0.0/", "::/129", "10.0.0.0/08", "10.0.0.0/-1"]) expect(parseCidr(bad)).toBeUndefined();
    expect(parseCidr("10.0.0.1")!.prefix).toBe(32);
  });
});

describe("special ranges", () => {
  const cases: [string, RegExp][] = [
    ["127.0.0.1", /loopback/],
    ["127.255.0.9", /loopback/],
    ["::1", /loopback/],
    ["0.0.0.0", /this host/],
    ["::", /unspecified/],
    ["10.1.2.3", /private.*1918/],
    ["172.16.0.1", /private/],
    ["172.31.255.255", /private/],
    ["192.168.0.1", /private/],
    ["100.64.0.1", /CGNAT/],
    ["100.127.255.255", /CGNAT/],
    ["169.254.1.1", /link-local/],
    ["fe80::1", /link-local/],
    ["fc00::1", /unique local/],
    ["fd12:3456::1", /unique local/],
    ["169.254.169.254", /cloud metadata/],
    ["fd00:ec2::254", /cloud metadata/],
    ["100.100.100.200", /cloud metadata/],
    ["224.0.0.1", /multicast/],
    ["255.255.255.255", /reserved or broadcast/],
    ["ff02::1", /multicast/],
    // The IPv6 forms that carry an IPv4 address are judged by it.
    ["::ffff:127.0.0.1", /loopback/],
    ["::ffff:169.254.169.254", /cloud metadata/],
    ["::ffff:10.0.0.1", /private/],
    ["::ffff:100.64.0.1", /CGNAT/],
    ["::ffff:0.0.0.0", /this host/],
    ["::127.0.0.1", /IPv4-compatible.*127\.0\.0\.1.*loopback/],
    ["64:ff9b::a9fe:a9fe", /NAT64 form of 169\.254\.169\.254/],
    ["2002:7f00:1::", /6to4 form of 127\.0\.0\.1/],
  ];
  for (const [addr, what] of cases) {
    test(`${addr} is special: ${what.source}`, () => {
      expect(specialRange(ip(addr))?.what).toMatch(what);
    });
  }

  test("public addresses are not special", () => {
    for (const addr of ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "64:ff9b::808:808", "::ffff:8.8.8.8"]) {
      expect(specialRange(ip(addr))).toBeUndefined();
    }
  });
});

import { describe, expect, it } from "vitest";
import { aptMirrorFromSources } from "../../systemd/container.js";

describe("the systemd test's debootstrap mirror, from the host's apt sources", () => {
  const deb822 = [
    "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\nComponents: main",
    "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no",
    "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main",
    "Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main",
  ].join("\n\n");

  it("takes the first enabled deb stanza that serves the suite", () => {
    expect(aptMirrorFromSources([deb822], "bookworm")).toBe("http://mirror.example/debian");
  });

  it("reads the one-line format, with options, before later files", () => {
    const list = "# deb http://old.example/debian bookworm main\ndeb [arch=amd64] http://line.example/debian bookworm main\n";
    expect(aptMirrorFromSources([list, deb822], "bookworm")).toBe("http://line.example/debian");
  });

  it("finds nothing for a suite no source serves", () => {
    expect(aptMirrorFromSources([deb822], "trixie")).toBeUndefined();
  });
});

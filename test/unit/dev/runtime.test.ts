import { describe, expect, it } from "vitest";
import { checkRuntime, pinnedNodeVersion } from "../../helpers/runtime.js";

describe("the test runtime", () => {
  it("is pinned to an exact Node 22 build", () => {
    expect(pinnedNodeVersion()).toMatch(/^22\.\d+\.\d+$/);
  });

  it("is the Node running this suite (and its forked workers)", () => {
    expect(process.versions.node.split(".")[0]).toBe(pinnedNodeVersion().split(".")[0]);
    expect(checkRuntime()).toBe(`Node v${process.versions.node} (${process.execPath})`);
  });

  it("refuses another major, saying how to get onto the pinned one", () => {
    expect(() => checkRuntime("20.20.2", "/usr/bin/node")).toThrow(
      /run on Node 22 .* this is Node 20\.20\.2 \(\/usr\/bin\/node\): run them through npm \(npm test,/,
    );
    expect(checkRuntime("22.0.1", "/x/node")).toBe("Node v22.0.1 (/x/node)");
  });
});

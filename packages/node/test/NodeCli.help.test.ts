/**
 * `--help`, in the test process, against the text committed in
 * fixtures/help.txt: every flag with its value's shape, what it does, its
 * default and the rule it follows. The help is the command's manual; a change
 * to it shows here as a diff to review, and is accepted with
 * `npx vitest run --project node -u` (CI never writes snapshots).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { runCommand } from "./utils/command.ts"

describe("NodeCli help", () => {
  it.effect("--help lists every flag with what it does and its default", () =>
    Effect.gen(function* () {
      const help = runCommand(["--help"])
      yield* help.effect
      const text = help.out.join("\n")
      // Colours would make the text depend on the terminal.
      expect(text.includes("\u001b[")).toBe(false)
      yield* Effect.promise(() => expect(text).toMatchFileSnapshot("fixtures/help.txt"))
    })
  )

  it.effect("a program's own defaults show as the defaults", () =>
    Effect.gen(function* () {
      const help = runCommand(["--help"], {
        name: "echo",
        description: "Answers every message with itself.",
        defaults: { port: 7000, maxWorkersCount: 20, metricsPort: 9464, otlpEndpoint: "http://127.0.0.1:4318" }
      })
      yield* help.effect
      const line = (flag: string) =>
        help.out
          .join("\n")
          .split("\n")
          .find((each) => each.startsWith(`  --${flag} `)) ?? ""
      expect(help.out.join("\n")).toContain("Answers every message with itself.")
      expect(help.out.join("\n")).toContain("  echo [flags]")
      expect(line("port")).toMatch(/\(default: 7000\)$/)
      expect(line("max-workers")).toMatch(/\(default: 20\)$/)
      expect(line("metrics-port")).toMatch(/\(default: 9464\)$/)
      expect(line("otlp-endpoint")).toMatch(/\(default: http:\/\/127\.0\.0\.1:4318\)$/)
      expect(line("min-workers")).toMatch(/\(default: 0\)$/)
    })
  )
})

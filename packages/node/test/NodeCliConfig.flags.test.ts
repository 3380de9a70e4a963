/**
 * The server's flags whose text is parsed, in the test process:
 * `--trusted-proxies` (addresses and CIDRs separated by commas, blanks around
 * them and empty entries dropped, a list with any other entry or none at all
 * refused) and `--otlp-endpoint` (an http:// or https:// URL); each refusal
 * says what the flag takes. NodeCliEnv.test.ts parses every flag from its
 * variable.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import type { NodeCliConfig } from "../src/index.ts"
import { parseFlags } from "./utils/flags.ts"

/** The value `--<flag> text` gives `field`, or the error's message. */
const given = (flag: string, text: string, field: keyof NodeCliConfig.Settings) =>
  Effect.map(parseFlags([`--${flag}`, text]), (result) =>
    result.settings === undefined ? result.error : result.settings[field]
  )

describe("NodeCliConfig flags", () => {
  it.effect("--trusted-proxies: addresses and CIDRs separated by commas, blanks and empty entries dropped", () =>
    Effect.gen(function* () {
      const trusted = (text: string) => given("trusted-proxies", text, "trustedProxies")
      assert.deepStrictEqual(
        yield* trusted(" 10.0.0.0/8, ::1 ,,192.0.2.7,"),
        Option.some(["10.0.0.0/8", "::1", "192.0.2.7"])
      )
      assert.deepStrictEqual(yield* trusted("fd00::/8"), Option.some(["fd00::/8"]))
      // One entry that is no address spoils the list; so does a list of no entries.
      for (const text of ["proxy.local", "10.0.0.0/8,proxy.local", "10.0.0.0/33", ",", " , "]) {
        assert.strictEqual(
          yield* trusted(text),
          `Invalid value for flag --trusted-proxies: "${text}". Expected: addresses or CIDRs separated by commas, such as 10.0.0.0/8,::1`,
          JSON.stringify(text)
        )
      }
    })
  )

  it.effect("--otlp-endpoint: an http:// or https:// URL", () =>
    Effect.gen(function* () {
      const endpoint = (text: string) => given("otlp-endpoint", text, "otlpEndpoint")
      assert.deepStrictEqual(yield* endpoint("http://127.0.0.1:4318"), Option.some("http://127.0.0.1:4318"))
      assert.deepStrictEqual(
        yield* endpoint("https://collector.example:4318/otlp"),
        Option.some("https://collector.example:4318/otlp")
      )
      for (const text of ["ftp://collector.example", "collector.example:4318", "http://[::1"]) {
        assert.strictEqual(
          yield* endpoint(text),
          `Invalid value for flag --otlp-endpoint: "${text}". Expected: an http:// or https:// URL such as http://127.0.0.1:4318`,
          text
        )
      }
    })
  )
})

/**
 * Row "random binary garbage, 1 byte to 1 MB": answered per the protocol
 * (OK per message), no crash. The protocol has no delimiters: a message is
 * what one read burst delivers (the Go original's framing by bufferSize), so one
 * blob can be one message or several, and each gets one "OK".
 *
 * First against the real `pool-manager` CLI; then against the reliability
 * server (the same OK server, from the layers), whose final stats prove that
 * every byte sent reached the callback and every message got its OK.
 */
import * as Net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { killAll, type ServerProcess, sleep } from "../harness/index.ts"
import { random, report, settledFds, startCli, startScript } from "./harness.ts"

afterEach(killAll)

const MiB = 1024 * 1024

/** Blob sizes: the framing boundaries, then log-uniform between 1 byte and 1 MiB. */
const sizes = (() => {
  const next = random(2024)
  const fixed = [1, 2, 5119, 5120, 5121, 10_240, 65_536, MiB - 1, MiB]
  const drawn = Array.from({ length: 70 }, () => Math.max(1, Math.round(Math.exp(next() * Math.log(MiB)))))
  return [...fixed, ...drawn]
})()

/**
 * Sends `blob` (in one write, or in random pieces with pauses), half-closes,
 * and collects the reply until the server closes.
 */
const send = (port: number, blob: Buffer, pieces: ReadonlyArray<number>) =>
  new Promise<{ reply: string; error: string | undefined }>((resolve) => {
    const socket = Net.connect({ port, host: "127.0.0.1" })
    const chunks: Array<Buffer> = []
    let error: string | undefined
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("error", (e: NodeJS.ErrnoException) => {
      error ??= e.code ?? e.message
    })
    socket.on("close", () => resolve({ reply: Buffer.concat(chunks).toString("latin1"), error }))
    socket.on("connect", async () => {
      let offset = 0
      for (const piece of pieces) {
        socket.write(blob.subarray(offset, offset + piece))
        offset += piece
        await sleep(1 + (piece % 3))
      }
      socket.end(blob.subarray(offset))
    })
  })

const garbage = async (server: ServerProcess, seed: number) => {
  const next = random(seed)
  const results: Array<{ size: number; oks: number; reply: string; error: string | undefined }> = []
  let sent = 0
  // Four connections at a time.
  for (let i = 0; i < sizes.length; i += 4) {
    const batch = sizes.slice(i, i + 4).map(async (size) => {
      const blob = Buffer.alloc(size)
      for (let b = 0; b < size; b++) blob[b] = Math.floor(next() * 256)
      // A third of the blobs arrive in up to 5 pieces with short pauses between them.
      const pieces: Array<number> = []
      if (next() < 1 / 3) {
        let left = size
        for (let p = 0; p < 4 && left > 1; p++) {
          const piece = 1 + Math.floor(next() * (left - 1))
          pieces.push(piece)
          left -= piece
        }
      }
      sent += size
      const { reply, error } = await send(server.port, blob, pieces)
      results.push({ size, oks: reply.length / 2, reply, error })
    })
    await Promise.all(batch)
  }
  return { results, sent }
}

describe("random binary garbage", () => {
  it("the CLI answers OK per message to 79 blobs of 1 byte to 1 MiB, and keeps running", async () => {
    const server = await startCli([])
    const baseline = await settledFds(server)
    const { results, sent } = await garbage(server, 1)
    const wrong = results.filter((r) => r.error !== undefined || !/^(OK)+$/.test(r.reply))
    const oks = results.reduce((sum, r) => sum + r.oks, 0)
    report("garbage, CLI", {
      blobs: results.length,
      bytesSent: sent,
      okReplies: oks,
      mostOksForOneBlob: Math.max(...results.map((r) => r.oks)),
      wrongReplies: wrong.slice(0, 5).map((r) => ({ size: r.size, reply: r.reply.slice(0, 40), error: r.error })),
      serverRunning: server.isRunning(),
      fdsBefore: baseline,
      fdsAfter: server.fds(),
      warningsOrErrors: server.output().match(/^.*(WARN|ERROR|Error).*$/gm) ?? []
    })
    expect(wrong).toEqual([])
    expect(server.isRunning()).toBe(true)
    expect(server.output()).not.toMatch(/WARN|ERROR|Error/)
  })

  it("every byte reaches the callback and every message gets exactly one OK (reliability server's stats)", async () => {
    const server = await startScript({})
    const { results, sent } = await garbage(server, 2)
    server.child.kill("SIGTERM")
    expect(await server.exited).toBe(0)
    const final = server.statsLines("final-stats").at(-1)!
    const oks = results.reduce((sum, r) => sum + r.oks, 0)
    report("garbage, counted", {
      blobs: results.length,
      bytesSent: sent,
      bytesReachedCallback: final.bytesRead,
      messages: final.messages,
      okReplies: oks,
      closedBySize: final.closedBySize,
      callbackFailures: final.callbackFailures
    })
    expect(results.every((r) => r.error === undefined && /^(OK)+$/.test(r.reply))).toBe(true)
    expect(final.bytesRead).toBe(sent)
    expect(final.messages).toBe(oks)
    expect(final.bytesWritten).toBe(2 * oks)
    expect(final.closedBySize).toBe(0)
  })
})

// Connects to 127.0.0.1:PORT (retrying while nothing listens yet, for up to
// 20 s), sends "HI!" and prints what the server answered. Exits 1 unless the
// answer is EXPECTED (default "OK").
import * as Net from "node:net"

const port = Number(process.argv[2])
const expected = process.argv[3] ?? "OK"
const deadline = Date.now() + 20_000

const attempt = () =>
  new Promise((resolve, reject) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    let answer = ""
    socket.setTimeout(5_000, () => socket.destroy(new Error("no answer within 5 s")))
    socket.on("connect", () => socket.write("HI!"))
    socket.on("data", (chunk) => {
      answer += chunk.toString()
      if (answer.length >= expected.length) socket.end()
    })
    socket.on("error", reject)
    socket.on("close", () => resolve(answer))
  })

for (;;) {
  try {
    const answer = await attempt()
    console.log(`answer: ${answer}`)
    process.exit(answer === expected ? 0 : 1)
  } catch (error) {
    if (error.code !== "ECONNREFUSED" || Date.now() > deadline) {
      console.error(error)
      process.exit(1)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

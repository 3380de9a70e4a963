/**
 * A tracer that keeps every span it makes, as in Effect's documentation, for
 * tests that check which spans the pool opens and how they end.
 */
import { Tracer } from "effect"

/** The tracer, the spans it made, and those of one name. */
export const recording = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  const named = (name: string) => spans.filter((span) => span.name === name)
  return { spans, tracer, named }
}

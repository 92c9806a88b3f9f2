/** The virtual time and the project set-up the fault suite and `pnpm bench` share. */
import { startSimulator } from "@gldt/gitlab-sim"
import { Clock, Effect } from "effect"
import { assert, describe, it } from "vitest"
import { addMaintainedProject, OffsetClock } from "../src/SimWorld.ts"

const timeAfter = (clock: OffsetClock, sleepMs: number) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const started = performance.now()
      yield* Effect.sleep(sleepMs)
      return { now: yield* Clock.currentTimeMillis, waitedMs: performance.now() - started }
    }).pipe(Effect.provideService(Clock.Clock, clock.clock)),
  )

describe("OffsetClock", () => {
  it("is real time plus the offset a run moves forward, for the lifecycle and the simulator alike", async () => {
    const clock = new OffsetClock()
    clock.offset = 5 * 3_600_000
    const before = Date.now()
    const { now } = await timeAfter(clock, 0)
    assert.isAtLeast(now, before + 5 * 3_600_000)
    assert.isBelow(now, Date.now() + 5 * 3_600_000 + 1_000)
  })

  it("jumps a sleep longer than jumpSleepsOverMs forward at once; shorter sleeps pass in real time", async () => {
    const clock = new OffsetClock({ jumpSleepsOverMs: 2_000 })
    const long = await timeAfter(clock, 3_600_000)
    assert.strictEqual(clock.offset, 3_600_000)
    assert.isBelow(long.waitedMs, 1_000)
    const short = await timeAfter(clock, 50)
    assert.isAtLeast(short.waitedMs, 45)
    assert.strictEqual(clock.offset, 3_600_000)
  })

  it("without jumpSleepsOverMs every sleep passes in real time", async () => {
    const clock = new OffsetClock()
    const { waitedMs } = await timeAfter(clock, 2_100)
    assert.isAtLeast(waitedMs, 2_000)
    assert.strictEqual(clock.offset, 0)
  })
})

describe("addMaintainedProject", () => {
  it("adds a user whose api token can create deploy tokens on its new project", async () => {
    const sim = await startSimulator()
    try {
      const { pat, project } = addMaintainedProject(sim, { user: "bot", path: "fault/run-1" })
      const res = await fetch(`${sim.url}/api/v4/projects/${project.id}/deploy_tokens`, {
        method: "POST",
        headers: { "PRIVATE-TOKEN": pat, "content-type": "application/json" },
        body: JSON.stringify({ name: "t", scopes: ["read_registry"] }),
      })
      assert.strictEqual(res.status, 201)
    } finally {
      await sim.close()
    }
  })
})

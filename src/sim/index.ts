export type { EngineRun, EpochOutcome } from './engine.js'
export { SimError, type SimErrorCode, simErrorCodes } from './errors.js'
export { runFast } from './fast-engine.js'
export { type ChurnModel, type Fleet, HARDWARE, type HardwareClass, honestFleet } from './fleet.js'
export { greatCircleKm, linkBetween } from './geography.js'
export { renderReport } from './report-html.js'
export { SCENARIOS, type Scenario, scenarioByName } from './scenarios.js'
export { SimLedger } from './sim-ledger.js'
export {
  type AttackReport,
  AUTO_STACK_MAX_NODES,
  type CohortEconomics,
  type SimEngine,
  type SimResult,
  type SimulateOptions,
  simulate,
} from './simulate.js'
export { runStack, STACK_ENGINE_MAX_NODES } from './stack-engine.js'
export { buildWorld, DEFAULT_SIM_PROTOCOL, type World } from './world.js'

import { controllerBench } from "./controller.ts"
const n = Number(process.argv[2] ?? 200)
await controllerBench("/work/main", (name, value, limit, ok) => console.log(`${name}: ${value} ${limit ?? ""} ${ok ?? ""}`), n)

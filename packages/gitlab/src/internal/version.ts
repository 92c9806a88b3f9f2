/**
 * This package's version, sent in `User-Agent: gldt/<version>`. Read from package.json, the one
 * place it is written (src/internal/ and the published dist/internal/ sit two levels below it).
 */
import { readFileSync } from "node:fs"

export const version: string = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version

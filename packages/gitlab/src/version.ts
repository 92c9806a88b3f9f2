/** This package's version, sent in `User-Agent: gldt/<version>` (a test keeps it equal to package.json). */
export const version = "0.1.0"

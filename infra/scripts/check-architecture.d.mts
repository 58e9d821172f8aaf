/** The parts of the shipped code: each is a top-level folder. */
export declare const PARTS: string[];
/** Packages that nothing reachable from functions/core/ may import. */
export declare const CLIENT_PACKAGES: string[];
/** Import specifiers of a source text. */
export declare function importsOf(text: string): string[];
export type ImportGraph = Map<string, { local: string[]; packages: string[] }>;
/** The import graph of the parts under `root` (`read` overrides how a file is read). */
export declare function readGraph(root: string, read?: (file: string) => string): ImportGraph;
/** Every violation of the layout rules, one line each. */
export declare function checkArchitecture(graph: ImportGraph): string[];

/** The image's entry points: bundle name (→ /app/<name>.cjs) → source file. */
export declare const ENTRY_POINTS: Record<string, string>;
/** Bundles every entry point into `outdir`; returns the file names written. */
export declare function buildBundles(outdir: string): Promise<string[]>;

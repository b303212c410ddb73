/**
 * Which way of explaining an image this code is: a resumed run reuses only results its own
 * revision computed, since the same config and images would now give other values. Raise it
 * whenever a change makes them differ (2: guided sampling; 3: its pairs weighed by the mixture of
 * its rounds; 4: the forest's correction from out-of-bag residuals, and standard errors charged
 * with the forest alone's misfit; 5: the forests' trees search splits with exact sums, so gains
 * equal but for rounding are ties, decided by the random order).
 */
export const EXPLANATION_REVISION = 5;


/**
 * Which way of explaining an image this code is: a resumed run reuses only results its own
 * revision computed, since the same config and images would now give other values. Raise it
 * whenever a change makes them differ (2: guided sampling; 3: its pairs weighed by the mixture of its rounds).
 */
export const EXPLANATION_REVISION = 3;


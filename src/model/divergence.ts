// A run that diverges without reaching NaN: the loss grows by orders of magnitude while every value
// stays finite, so the NaN check (DivergedError) never fires. A language model's loss starts near
// ln(vocabulary) and a healthy run never goes far above where it started; one 10x above its first
// loss is diverging. The CLI and the page warn once, at the first such step, and keep going.

export class DivergenceWatch {
  private first = NaN;
  private best = Infinity;
  private bestStep = 0;
  private warned = false;

  constructor(readonly factor = 10) {}

  /** Feeds one step's loss; returns the warning the first time the run is diverging, else null. */
  push(step: number, loss: number): string | null {
    if (!Number.isFinite(loss)) return null; // a NaN or infinite loss is DivergedError's
    if (Number.isNaN(this.first)) this.first = loss;
    if (loss < this.best) {
      this.best = loss;
      this.bestStep = step;
    }
    if (this.warned || !(this.first > 0) || loss <= this.factor * this.first) return null;
    this.warned = true;
    return (
      `the loss is ${loss.toPrecision(4)} at step ${step}, ${(loss / this.first).toFixed(0)}x its first value ${this.first.toPrecision(4)} ` +
      `(lowest ${this.best.toPrecision(4)} at step ${this.bestStep}): the run is diverging; try a lower learning rate`
    );
  }
}

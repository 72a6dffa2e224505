import type { Message } from "@bufbuild/protobuf";
import { deepFreeze } from "../shared/deep-freeze.ts";

/**
 * One frozen answer message per frozen resource object. Repositories hand out the same
 * frozen resource while its row is unchanged (src/shared/row-memo.ts), so repeated reads
 * answer the same message and the server encodes it once
 * (src/server/frozen-encodings.ts) instead of once per call. A resource that is not
 * frozen gets a new answer every time.
 */
export class FrozenAnswers<Resource extends object, Answer extends Message> {
  readonly #answers = new WeakMap<Resource, Answer>();
  readonly #build: (resource: Resource) => Answer;

  constructor(build: (resource: Resource) => Answer) {
    this.#build = build;
  }

  of(resource: Resource): Answer {
    if (!Object.isFrozen(resource)) return this.#build(resource);
    let answer = this.#answers.get(resource);
    if (answer === undefined) {
      answer = deepFreeze(this.#build(resource));
      this.#answers.set(resource, answer);
    }
    return answer;
  }
}

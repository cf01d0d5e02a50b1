import kafkajs, { type PartitionAssigner } from 'kafkajs';

// kafkajs is CommonJS: its values come through the default export under Node's ESM loader.
const { AssignerProtocol } = kafkajs;

/**
 * A task is one partition number of one sub-topology: its source topic's partition p and the
 * same partition of the sub-topology's repartition topics. They must be owned together, so this
 * assignor hands out whole tasks: every topic partition of a task goes to the same member.
 * Tasks are spread round-robin over the members sorted by id; a member that owned a task in the
 * previous generation keeps it when the balance allows (sticky), so a rebalance moves few tasks.
 */
export const COPARTITIONED_ASSIGNOR = 'SluiceCopartitioned';

export interface TaskNaming {
  /** The task a topic partition belongs to (its sub-topology and partition number). */
  taskOf(topic: string, partition: number): string;
}

interface MemberTasks {
  readonly memberId: string;
  /** Tasks this member owned in the previous generation (its subscription's user data). */
  readonly previous: ReadonlySet<string>;
}

/** Pure planning: task ids per member, balanced (sizes differ by at most one), sticky where possible. */
export function planTasks(tasks: readonly string[], members: readonly MemberTasks[]): Map<string, string[]> {
  const sorted = [...members].sort((left, right) => left.memberId.localeCompare(right.memberId));
  const plan = new Map<string, string[]>(sorted.map((member) => [member.memberId, []]));
  if (sorted.length === 0) return plan;
  const ordered = [...tasks].sort();
  const floor = Math.floor(ordered.length / sorted.length);
  let withExtra = ordered.length % sorted.length;
  const capacity = new Map<string, number>();
  // Members that already hold the most tasks get the extra slots first, so fewer tasks move.
  const byPrevious = [...sorted].sort(
    (left, right) => right.previous.size - left.previous.size || left.memberId.localeCompare(right.memberId),
  );
  for (const member of byPrevious) {
    capacity.set(member.memberId, floor + (withExtra > 0 ? 1 : 0));
    if (withExtra > 0) withExtra--;
  }
  const unassigned: string[] = [];
  for (const task of ordered) {
    const keeper = sorted.find(
      (member) => member.previous.has(task) && (plan.get(member.memberId)?.length ?? 0) < (capacity.get(member.memberId) ?? 0),
    );
    if (keeper) plan.get(keeper.memberId)?.push(task);
    else unassigned.push(task);
  }
  for (const task of unassigned) {
    const member = sorted.find((candidate) => (plan.get(candidate.memberId)?.length ?? 0) < (capacity.get(candidate.memberId) ?? 0));
    if (!member) throw new Error('task planning ran out of capacity');
    plan.get(member.memberId)?.push(task);
  }
  return plan;
}

/** The kafkajs partition assigner over `planTasks`; each member reports its tasks in user data. */
export function copartitionedAssigner(naming: TaskNaming, currentTasks: () => readonly string[]): PartitionAssigner {
  return ({ cluster }) => ({
    name: COPARTITIONED_ASSIGNOR,
    version: 1,
    protocol({ topics }) {
      return {
        name: COPARTITIONED_ASSIGNOR,
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: 1,
          topics,
          userData: Buffer.from(JSON.stringify(currentTasks())),
        }),
      };
    },
    assign({ members, topics }) {
      const partitionsOf = new Map<string, { topic: string; partition: number }[]>();
      for (const topic of topics) {
        for (const metadata of cluster.findTopicPartitionMetadata(topic)) {
          const task = naming.taskOf(topic, metadata.partitionId);
          const list = partitionsOf.get(task) ?? [];
          list.push({ topic, partition: metadata.partitionId });
          partitionsOf.set(task, list);
        }
      }
      const plan = planTasks(
        [...partitionsOf.keys()],
        members.map((member) => {
          const decoded = AssignerProtocol.MemberMetadata.decode(member.memberMetadata);
          let previous: string[] = [];
          try {
            previous = decoded?.userData ? (JSON.parse(decoded.userData.toString()) as string[]) : [];
          } catch {
            previous = [];
          }
          return { memberId: member.memberId, previous: new Set(previous) };
        }),
      );
      return Promise.resolve(
        [...plan].map(([memberId, tasks]) => {
          const assignment: Record<string, number[]> = {};
          for (const task of tasks) {
            for (const { topic, partition } of partitionsOf.get(task) ?? []) (assignment[topic] ??= []).push(partition);
          }
          return {
            memberId,
            memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment, userData: Buffer.alloc(0) }),
          };
        }),
      );
    },
  });
}

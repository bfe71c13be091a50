// The wording of the built-in task: scenarios, each with question sentences and answer lines per kind of move.
// Placeholders: {Name} the actor, {P}/{p} subject pronoun, {o} object pronoun, {poss}/{Poss} possessive, {self},
// {friend}, {items} the plural noun, {n} and {k} the move's numbers (money scenarios print them with "$"), and in
// answer lines {calc}: "a op n = <<a op n=r>>r".

export type MoveKind = "+" | "-" | "*" | "/" | "mod" | "c+" | "c-" | "c+sum" | "c-sum";

export interface Scenario {
  id: string;
  /** Plural nouns for the quantity. */
  items: string[];
  /** Numbers are money: "$12". */
  money: boolean;
  start: string[];
  ask: string[];
  /** Question sentences per move; "c+"/"c-" are compound moves ({k} groups of {n}). */
  q: Record<"+" | "-" | "*" | "/" | "mod" | "c+" | "c-", string[]>;
  /** Answer lines per move; "c+"/"c-" compute k*n, "c+sum"/"c-sum" then add or subtract it. */
  a: Record<MoveKind, string[]>;
}

export const NAMES: [string, "she" | "he"][] = [
  ["Maya", "she"],
  ["Liam", "he"],
  ["Sofia", "she"],
  ["Noah", "he"],
  ["Ava", "she"],
  ["Ethan", "he"],
  ["Zoe", "she"],
  ["Omar", "he"],
  ["Priya", "she"],
  ["Lucas", "he"],
  ["Hana", "she"],
  ["Mateo", "he"],
  ["Chloe", "she"],
  ["Kenji", "he"],
  ["Amara", "she"],
  ["Diego", "he"],
  ["Ines", "she"],
  ["Felix", "he"],
  ["Leila", "she"],
  ["Tomas", "he"],
];
export const FRIENDS = ["a friend", "a cousin", "a classmate", "a neighbor", "a younger brother", "an older sister"];

export const SCENARIOS: Scenario[] = [
  {
    id: "collection",
    items: ["stickers", "marbles", "stamps", "seashells", "baseball cards", "beads"],
    money: false,
    start: ["{Name} has {n} {items}.", "{Name} collects {items} and has {n} of them."],
    ask: ["How many {items} does {Name} have now?", "How many {items} does {Name} have at the end?"],
    q: {
      "+": [
        "{P} finds {n} more {items}.",
        "{Friend} gives {o} {n} {items}.",
        "{P} buys {n} more {items} at the store.",
      ],
      "-": ["{P} gives {n} {items} to {friend}.", "{P} loses {n} {items}.", "{P} trades away {n} {items}."],
      "*": ["After a swap meet, {p} has {n} times as many {items} as before."],
      "/": ["{P} splits the {items} equally into {n} boxes and keeps just one box."],
      mod: ["{P} puts the {items} into bags of {n}, gives away every full bag, and keeps the rest."],
      "c+": ["{P} buys {k} packs with {n} {items} in each pack."],
      "c-": ["{P} gives {k} friends {n} {items} each."],
    },
    a: {
      "+": ["{Name} then has {calc} {items}.", "Now {p} has {calc} {items}."],
      "-": ["{Name} has {calc} {items} left.", "After that, {p} has {calc} {items}."],
      "*": ["{P} now has {calc} {items}."],
      "/": ["One box holds {calc} {items}, and {p} keeps that box."],
      mod: ["The {items} that do not fill a bag are {calc}."],
      "c+": ["The packs hold {calc} {items}."],
      "c-": ["{P} gives away {calc} {items}."],
      "c+sum": ["So {Name} has {calc} {items}."],
      "c-sum": ["So {Name} has {calc} {items} left."],
    },
  },
  {
    id: "money",
    items: ["dollars"],
    money: true,
    start: ["{Name} has {n} in {poss} piggy bank.", "{Name} has saved {n}."],
    ask: ["How much money does {Name} have now?", "How many dollars does {Name} have in the end?"],
    q: {
      "+": ["{P} earns {n} walking dogs.", "{Poss} grandmother gives {o} {n}.", "{P} finds {n} in an old coat."],
      "-": ["{P} spends {n} on a book.", "{P} pays {n} for a concert ticket.", "{P} lends {n} to {friend}."],
      "*": ["A savings bonus makes {poss} money grow to {n} times as much."],
      "/": ["{P} splits the money equally among {n} people, {self} included, and keeps {poss} share."],
      mod: ["{P} buys as many {n} tickets as {p} can and keeps the change."],
      "c+": ["{P} earns {n} a day for {k} days."],
      "c-": ["{P} buys {k} games that cost {n} each."],
    },
    a: {
      "+": ["{Name} then has {calc}.", "Now {p} has {calc}."],
      "-": ["{Name} has {calc} left.", "That leaves {o} with {calc}."],
      "*": ["{Poss} money grows to {calc}."],
      "/": ["Each share is {calc}."],
      mod: ["The change is {calc}."],
      "c+": ["{P} earns {calc}."],
      "c-": ["The games cost {calc}."],
      "c+sum": ["So {p} has {calc}."],
      "c-sum": ["So {p} has {calc} left."],
    },
  },
  {
    id: "bakery",
    items: ["muffins", "cookies", "bagels", "rolls", "cupcakes"],
    money: false,
    start: ["A bakery bakes {n} {items} in the morning.", "A baker has {n} {items} on the counter."],
    ask: ["How many {items} does the bakery have now?", "How many {items} are left at the bakery?"],
    q: {
      "+": ["In the afternoon it bakes {n} more {items}.", "A second oven adds {n} more {items}."],
      "-": ["Customers buy {n} {items}.", "The staff eat {n} {items} at lunch."],
      "*": ["For a party order, the baker makes the batch {n} times as big."],
      "/": ["The {items} are shared equally among {n} shops, and the bakery keeps one share."],
      mod: ["The {items} are packed in boxes of {n}; every full box is sold and the rest stay at the bakery."],
      "c+": ["A delivery brings {k} trays with {n} {items} on each tray."],
      "c-": ["{k} customers each buy {n} {items}."],
    },
    a: {
      "+": ["The bakery then has {calc} {items}.", "Now there are {calc} {items}."],
      "-": ["That leaves {calc} {items}.", "The bakery has {calc} {items} left."],
      "*": ["The batch becomes {calc} {items}."],
      "/": ["One share is {calc} {items}."],
      mod: ["The {items} that do not fill a box are {calc}."],
      "c+": ["The trays hold {calc} {items}."],
      "c-": ["The customers buy {calc} {items}."],
      "c+sum": ["So the bakery has {calc} {items}."],
      "c-sum": ["So {calc} {items} are left."],
    },
  },
  {
    id: "farm",
    items: ["chickens", "sheep", "goats", "ducks", "rabbits"],
    money: false,
    start: ["{Name} keeps {n} {items} on {poss} farm.", "{Name} has a farm with {n} {items}."],
    ask: ["How many {items} does {Name} have now?", "How many {items} are on the farm in the end?"],
    q: {
      "+": ["{P} buys {n} more {items}.", "In spring, {n} baby {items} are born."],
      "-": ["{P} sells {n} {items} at the market.", "{P} gives {n} {items} to a neighbor."],
      "*": ["Over a few years, the flock grows to {n} times its size."],
      "/": ["{P} divides the {items} equally among {n} fields and keeps only one field's worth."],
      mod: ["{P} sells the {items} in groups of {n} and keeps those that do not make a full group."],
      "c+": ["{P} buys {k} pens with {n} {items} in each."],
      "c-": ["{P} sells {k} groups of {n} {items}."],
    },
    a: {
      "+": ["{Name} then has {calc} {items}.", "Now there are {calc} {items}."],
      "-": ["{Name} has {calc} {items} left.", "That leaves {calc} {items}."],
      "*": ["The flock becomes {calc} {items}."],
      "/": ["One field's worth is {calc} {items}."],
      mod: ["The {items} that do not make a full group are {calc}."],
      "c+": ["The pens hold {calc} {items}."],
      "c-": ["{P} sells {calc} {items}."],
      "c+sum": ["So {Name} has {calc} {items}."],
      "c-sum": ["So {Name} has {calc} {items} left."],
    },
  },
  {
    id: "library",
    items: ["books"],
    money: false,
    start: ["A school library has {n} {items}.", "The reading room holds {n} {items}."],
    ask: ["How many {items} does the library keep now?", "How many {items} are left in the end?"],
    q: {
      "+": ["The library buys {n} new {items}.", "Parents donate {n} {items}."],
      "-": ["Students borrow {n} {items}.", "{n} damaged {items} are thrown away."],
      "*": ["After a book drive, there are {n} times as many {items} as before."],
      "/": ["The {items} are split equally among {n} classrooms, and the library keeps one classroom's share."],
      mod: ["The {items} are packed in crates of {n}; every full crate goes to another school and the rest stay."],
      "c+": ["{k} boxes arrive with {n} {items} in each box."],
      "c-": ["{k} classes borrow {n} {items} each."],
    },
    a: {
      "+": ["The library then has {calc} {items}.", "Now there are {calc} {items}."],
      "-": ["That leaves {calc} {items}.", "The library has {calc} {items} left."],
      "*": ["There are now {calc} {items}."],
      "/": ["One share is {calc} {items}."],
      mod: ["The {items} that do not fill a crate are {calc}."],
      "c+": ["The boxes hold {calc} {items}."],
      "c-": ["The classes borrow {calc} {items}."],
      "c+sum": ["So the library has {calc} {items}."],
      "c-sum": ["So {calc} {items} are left."],
    },
  },
];

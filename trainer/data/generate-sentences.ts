/**
 * Generator for data-builtin/sentences.csv (run once; the CSV is committed):
 *   npx tsx trainer/data/generate-sentences.ts
 *
 * A short topic-classification set written for Runledger and released under CC0: 400 short English sentences,
 * 100 each about weather, sport, cooking and finance. Each topic has hand-written templates whose slots take
 * words that fit them, so every sentence reads naturally. Company and team names are invented.
 *
 * Deterministic: the templates and slot words are drawn with mulberry32(SEED); duplicates are skipped; the rows
 * are shuffled with the same generator so the file is not grouped by topic.
 */
import fs from "node:fs";
import path from "node:path";
import Papa from "papaparse";
import { mulberry32, shuffleInPlace } from "./prng";

const SEED = 20240601;
const PER_TOPIC = 100;
const OUTPUT = path.join(process.cwd(), "data-builtin", "sentences.csv");

type Pick = <T>(items: readonly T[]) => T;
type Template = (pick: Pick) => string;

const cities = ["London", "Paris", "Madrid", "Oslo", "Chicago", "Sydney", "Toronto", "Dublin", "Lisbon", "Berlin", "Glasgow", "Denver"];
const futureTimes = ["tomorrow", "this afternoon", "tonight", "on Sunday", "over the weekend", "this evening", "on Friday", "later today"];
const pastTimes = ["last night", "yesterday", "this morning", "on Tuesday", "over the weekend"];
const teams = [
  "Riverside",
  "the Harbour Lions",
  "North Vale",
  "Kingsbridge",
  "the Red Foxes",
  "Eastfield United",
  "the Comets",
  "Millbrook",
];
const companies = ["Northwind", "Globex", "Brightline", "Harbor Steel", "Pinecrest", "Solara", "Kestrel Foods", "Bluepeak"];
const months = ["January", "March", "April", "June", "September", "October", "November"];

const TOPICS: Record<string, Template[]> = {
  weather: [
    (p) =>
      `It will be ${p(["sunny", "cloudy", "windy", "foggy", "cold", "warm", "humid", "chilly", "frosty", "mild"])} in ${p(cities)} ${p(futureTimes)}.`,
    (p) => `Heavy ${p(["rain", "snow", "showers", "hail"])} is expected ${p(futureTimes)}.`,
    (p) =>
      `The forecast says ${p(["12", "18", "24", "30", "5", "-3"])} degrees and ${p(["clear", "grey", "blue", "cloudy", "stormy"])} skies.`,
    (p) => `A ${p(["storm", "cold front", "band of rain", "thunderstorm", "heatwave"])} is moving towards the coast ${p(futureTimes)}.`,
    (p) =>
      `We woke up to ${p(["thick fog", "fresh snow", "a light frost", "clear skies", "low grey clouds"])} and a ${p(["cool", "gentle", "warm", "bitter", "strong"])} breeze.`,
    (p) => `Temperatures will drop below freezing ${p(futureTimes)}.`,
    (p) => `The wind picked up ${p(pastTimes)} and blew over our garden fence.`,
    (p) =>
      `There is a ${p(["twenty", "forty", "sixty", "seventy", "ninety"])} percent chance of ${p(["rain", "snow", "thunder", "showers", "sleet"])} ${p(futureTimes)}.`,
    (p) => `After a week of ${p(["rain", "drizzle", "fog", "grey skies", "storms"])}, the sun finally came out.`,
    (p) => `The roads are icy, so drive carefully ${p(futureTimes)}.`,
    (p) => `This summer in ${p(cities)} was the ${p(["hottest", "wettest", "driest", "windiest"])} on record.`,
    (p) => `Thunder rumbled over the hills ${p(pastTimes)}.`,
    (p) => `Expect ${p(["rain", "snow", "drizzle", "strong winds"])} in the north and sunshine in the south ${p(futureTimes)}.`,
    (p) => `The humidity made the ${p(["afternoon", "evening", "whole day"])} feel much warmer than it was.`,
    (p) => `A flood warning has been issued for the ${p(["river", "lower", "northern", "eastern"])} valley after days of rain.`,
    (p) =>
      `Bring a ${p(["coat", "scarf", "raincoat", "warm jumper", "hat"])}, it is ${p(["freezing", "pouring", "bitterly cold", "drizzling"])} outside.`,
    (p) => `The snow in ${p(cities)} closed several schools ${p(pastTimes)}.`,
  ],
  sport: [
    (p) => {
      const winner = p(teams);
      const loser = p(teams.filter((t) => t !== winner));
      return `${cap(winner)} beat ${loser} ${p(["2-1", "3-0", "1-0", "4-2", "3-1"])} in ${p(["last night's match", "the cup final", "Saturday's derby", "the semi-final", "an away game"])}.`;
    },
    (p) => `The ${p(["striker", "winger", "captain", "midfielder", "young forward"])} scored twice in the second half.`,
    (p) =>
      `Our ${p(["hockey", "netball", "rugby", "football", "basketball", "volleyball"])} team trains ${p(["every Tuesday evening", "three times a week", "on Saturday mornings", "after school"])}.`,
    (p) => {
      const [distance, time] = p([
        ["5K", "twenty-two minutes"],
        ["10K", "forty-five minutes"],
        ["half marathon", "two hours"],
        ["marathon", "four hours"],
      ] as const);
      return `${p(["She", "He", "My sister", "Our coach"])} ran the ${distance} in under ${time}.`;
    },
    (p) => `The referee showed a red card in the ${p(["29th", "37th", "58th", "64th", "76th", "88th"])} minute.`,
    (p) =>
      `${p(["Maria", "Tom", "Ana", "Luca", "Priya", "Jonas"])} won the tennis final after a ${p(["tense", "long", "dramatic", "close"])} third set.`,
    (p) => `The coach made ${p(["two", "three", "four"])} substitutions at half time.`,
    (p) =>
      `Tickets for the ${p(["rugby", "football", "basketball", "cricket"])} final sold out in ${p(["ten minutes", "an hour", "one morning", "a day"])}.`,
    (p) =>
      `The ${p(["cricket", "football", "hockey", "cycling", "swimming"])} season starts ${p(["next month", "in August", "this weekend", "in the spring"])}.`,
    (p) => `${p(["He", "She", "My brother", "Our captain"])} swam forty lengths of the pool before breakfast.`,
    (p) => `The cyclists climbed the mountain stage ${p(["in heavy rain", "in the heat", "into a headwind", "at record pace"])}.`,
    (p) => `Our goalkeeper saved a penalty in the ${p(["last minute", "first half", "shoot-out", "final seconds"])}.`,
    (p) => `The home crowd cheered as ${p(teams)} lifted the trophy.`,
    (p) => `${cap(p(teams))} have signed a new ${p(["striker", "goalkeeper", "defender", "coach", "winger"])} for next season.`,
    (p) => `The ${p(["match", "final", "derby", "quarter-final"])} went to extra time and then penalties.`,
    (p) => `The ${p(["sprinter", "long jumper", "high jumper", "relay team"])} set a new national record at the championships.`,
    (p) => `${cap(p(teams))} are ${p(["top of the league", "unbeaten in six games", "fighting relegation", "through to the final"])}.`,
  ],
  cooking: [
    (p) =>
      `Chop the ${p(["onions", "carrots", "peppers", "mushrooms", "leeks", "potatoes"])} and fry them in ${p(["olive oil", "butter"])} for ${p(["five", "ten", "three", "eight"])} minutes.`,
    (p) =>
      `Bake the ${p(["bread", "cake", "pie", "lasagne", "cookies", "chicken"])} at ${p(["180", "200", "220"])} degrees for ${p(["half an hour", "forty minutes", "an hour", "twenty minutes"])}.`,
    (p) =>
      `Add a pinch of ${p(["salt", "cumin", "paprika", "nutmeg", "cinnamon", "chilli"])} to the ${p(["soup", "sauce", "stew", "curry", "lentils", "rice"])}.`,
    (p) => `Let the ${p(["dough", "pastry"])} rest for ${p(["an hour", "thirty minutes", "ten minutes"])} before rolling it out.`,
    (p) => `Whisk the eggs with ${p(["milk", "cream", "a little sugar", "melted butter"])} until smooth.`,
    (p) =>
      `I made a ${p(["spicy", "creamy", "quick", "hearty", "simple"])} ${p(["curry", "risotto", "soup", "pasta", "stew"])} with ${p(["chickpeas", "spinach", "leftover chicken", "mushrooms", "lentils", "roasted squash"])} for dinner.`,
    (p) => `Simmer the ${p(["sauce", "soup", "stock", "custard", "porridge"])} gently and stir it every few minutes.`,
    (p) => `Season the ${p(["steak", "salmon", "chicken", "tofu", "lamb"])} well before it goes on the grill.`,
    (p) => `The recipe needs ${p(["200 grams", "a cup", "250 grams", "two cups"])} of flour and ${p(["two", "three", "four"])} eggs.`,
    (p) =>
      `Serve the ${p(["soup", "pasta", "curry", "fish", "risotto"])} warm with fresh ${p(["basil", "parsley", "coriander", "mint", "chives", "dill"])}.`,
    (p) => `Knead the dough for ${p(["ten", "five", "fifteen"])} minutes until it feels elastic.`,
    (p) => `Roast the ${p(["carrots", "parsnips", "beetroot", "sweet potatoes", "squash"])} with garlic and a drizzle of honey.`,
    (p) =>
      `Taste the ${p(["sauce", "soup", "stew", "dressing"])} and add more ${p(["salt", "lemon juice", "pepper", "chilli"])} if needed.`,
    (p) => `Grate the ${p(["cheese", "parmesan", "lemon zest"])} over the pasta just before serving.`,
    (p) =>
      `Marinate the ${p(["chicken", "lamb", "tofu", "prawns"])} in ${p(["yoghurt and spices", "soy sauce and ginger", "lemon and garlic"])} overnight.`,
    (p) => `My grandmother taught me to make ${p(["apple pie", "fresh pasta", "dumplings", "bread", "pancakes"])} from scratch.`,
    (p) => `Toast the ${p(["seeds", "nuts", "spices", "breadcrumbs"])} in a dry pan until they smell nutty.`,
  ],
  finance: [
    (p) => `The central bank raised interest rates by ${p(["a quarter point", "half a percentage point", "0.25 percent", "0.5 percent"])}.`,
    (p) => `${p(companies)} shares fell ${p(["two", "three", "five", "eight", "twelve"])} percent after the earnings report.`,
    (p) => `Inflation rose to ${p(["3.1", "4.2", "2.8", "5.5", "6.3"])} percent in ${p(months)}.`,
    (p) =>
      `I moved my savings into a ${p(["fixed-term deposit", "high-interest account", "savings bond", "cash ISA"])} with a better rate.`,
    (p) =>
      `The stock market closed ${p(["higher", "lower", "flat"])} on ${p(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"])} after a ${p(["volatile", "quiet", "busy"])} session.`,
    (p) =>
      `Mortgage payments will rise for ${p(["many homeowners", "first-time buyers", "most borrowers"])} next ${p(["year", "month", "spring"])}.`,
    (p) =>
      `Investors are worried about ${p(["rising debt", "a slowing economy", "the trade deficit", "falling bond prices", "weak consumer spending"])}.`,
    (p) =>
      `${p(companies)} reported a profit of ${p(["12", "45", "80", "130"])} million ${p(["dollars", "euros", "pounds"])} this quarter.`,
    (p) => `${p(["She", "He", "My father", "Our neighbour"])} pays off the credit card in full every month.`,
    (p) => `The bank approved our ${p(["loan", "mortgage", "overdraft"])} after checking our income.`,
    (p) =>
      `Bond yields ${p(["climbed", "fell", "edged up"])} as traders expected ${p(["more rate rises", "a rate cut", "weaker growth"])}.`,
    (p) => `We set a monthly budget to save for ${p(["a deposit on a house", "a new car", "our pensions", "an emergency fund"])}.`,
    (p) => `The pension fund invested heavily in ${p(["energy", "technology", "healthcare", "banking"])} stocks.`,
    (p) => `The ${p(["euro", "pound", "yen", "franc"])} weakened against the dollar ${p(["this week", "overnight", "on Friday"])}.`,
    (p) => `Tax returns are due at the end of ${p(months)}.`,
    (p) => `The startup raised ${p(["five", "twenty", "forty"])} million in its latest funding round.`,
    (p) => `${p(companies)} cut its dividend to ${p(["pay down debt", "fund a new factory", "protect its cash"])}.`,
  ],
};

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function generateSentences(): { text: string; label: string }[] {
  const random = mulberry32(SEED);
  const pick: Pick = (items) => items[Math.floor(random() * items.length)]!;
  const rows: { text: string; label: string }[] = [];
  for (const [label, templates] of Object.entries(TOPICS)) {
    const seen = new Set<string>();
    // Cycle through templates so each contributes about equally; retry a template on a duplicate.
    for (let attempt = 0; seen.size < PER_TOPIC; attempt++) {
      if (attempt > PER_TOPIC * 50) throw new Error(`topic ${label}: too few distinct sentences`);
      const text = templates[attempt % templates.length]!(pick);
      if (!seen.has(text)) {
        seen.add(text);
        rows.push({ text, label });
      }
    }
  }
  return shuffleInPlace(rows, random);
}

/** The whole CSV text, as written to data-builtin/sentences.csv. */
export function buildSentencesCsv(): string {
  return Papa.unparse(generateSentences(), { columns: ["text", "label"], newline: "\n" }) + "\n";
}

function main(): void {
  const csv = buildSentencesCsv();
  fs.writeFileSync(OUTPUT, csv);
  console.log(`wrote ${csv.split("\n").length - 2} rows to ${path.relative(process.cwd(), OUTPUT)}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(__filename)) main();

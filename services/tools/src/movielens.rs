//! MovieLens-100K as RecBole publishes it inside its wheel: 100,000 ratings by 943 users
//! of 1,682 movies, with times, titles, release years and genres; and the leave-last-out
//! split every recommendation evaluation here uses.

use crate::wheel_data::WheelFile;
use anyhow::Context;
use std::collections::HashMap;
use std::path::Path;

const INTERACTIONS: WheelFile = WheelFile {
    pinned: "recbole==1.2.1",
    member: "recbole/dataset_example/ml-100k/ml-100k.inter",
};
const MOVIES: WheelFile = WheelFile {
    pinned: "recbole==1.2.1",
    member: "recbole/dataset_example/ml-100k/ml-100k.item",
};

/// One movie; items are numbered 0.. in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct Movie {
    pub id: String,
    pub title: String,
    pub year: Option<u32>,
    pub genres: Vec<String>,
}

impl Movie {
    /// What content similarity reads: "Toy Story (1995). Animation, Children's, Comedy."
    pub fn text(&self) -> String {
        let year = self.year.map_or(String::new(), |y| format!(" ({y})"));
        format!("{}{year}. {}.", self.title, self.genres.join(", "))
    }
}

/// One rating: who, which movie (its index), when.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rating {
    pub user: usize,
    pub item: usize,
    pub rating: f32,
    pub timestamp: i64,
}

#[derive(Clone, Debug)]
pub struct MovieLens {
    pub movies: Vec<Movie>,
    pub ratings: Vec<Rating>,
    pub users: usize,
}

/// Fetches (once, into `cache_dir`) and reads the dataset.
pub fn load(cache_dir: &Path) -> anyhow::Result<MovieLens> {
    let movies_file = MOVIES.fetch(cache_dir)?;
    let ratings_file = INTERACTIONS.fetch(cache_dir)?;
    let movies = parse_movies(&std::fs::read_to_string(&movies_file)?)
        .with_context(|| format!("reading {}", movies_file.display()))?;
    let index: HashMap<&str, usize> = movies
        .iter()
        .enumerate()
        .map(|(i, m)| (m.id.as_str(), i))
        .collect();
    let (ratings, users) = parse_ratings(&std::fs::read_to_string(&ratings_file)?, &index)
        .with_context(|| format!("reading {}", ratings_file.display()))?;
    Ok(MovieLens {
        movies,
        ratings,
        users,
    })
}

/// Tab-separated: item_id, movie_title, release_year, class (genres, space-separated).
fn parse_movies(tsv: &str) -> anyhow::Result<Vec<Movie>> {
    tsv.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            let fields: Vec<&str> = line.split('\t').collect();
            anyhow::ensure!(
                fields.len() == 4,
                "movie line {} has {} fields",
                n + 2,
                fields.len()
            );
            Ok(Movie {
                id: fields[0].to_string(),
                title: fields[1].trim().to_string(),
                year: fields[2].trim().parse().ok(),
                genres: fields[3].split_whitespace().map(String::from).collect(),
            })
        })
        .collect()
}

/// Tab-separated: user_id, item_id, rating, timestamp. Users are numbered 0.. in order of
/// first appearance.
fn parse_ratings(tsv: &str, items: &HashMap<&str, usize>) -> anyhow::Result<(Vec<Rating>, usize)> {
    let mut users: HashMap<&str, usize> = HashMap::new();
    let mut ratings = Vec::new();
    for (n, line) in tsv.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        anyhow::ensure!(
            fields.len() == 4,
            "rating line {} has {} fields",
            n + 1,
            fields.len()
        );
        let next = users.len();
        let user = *users.entry(fields[0]).or_insert(next);
        let item = *items
            .get(fields[1])
            .with_context(|| format!("rating line {} names unknown item {}", n + 1, fields[1]))?;
        ratings.push(Rating {
            user,
            item,
            rating: fields[2].parse()?,
            timestamp: fields[3].parse::<f64>()? as i64,
        });
    }
    Ok((ratings, users.len()))
}

/// Which held-out interaction a query predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holdout {
    /// The second-to-last interaction, for tuning.
    Validation,
    /// The last interaction, for the reported figures.
    Test,
}

/// One user's query: everything before the held-out item, and the item.
#[derive(Clone, Debug)]
pub struct Query {
    pub user: usize,
    /// (item, timestamp) in time order.
    pub history: Vec<(usize, i64)>,
    pub target: usize,
    /// When the held-out interaction happened: features are taken as of this moment.
    pub time: i64,
}

/// Leave-last-out: per user, interactions in time order (ties by item); the last is the
/// test item, the one before it the validation item, each predicted from what precedes it.
pub fn queries(data: &MovieLens, holdout: Holdout) -> Vec<Query> {
    let mut timelines: Vec<Vec<(usize, i64)>> = vec![Vec::new(); data.users];
    for r in &data.ratings {
        timelines[r.user].push((r.item, r.timestamp));
    }
    let drop = match holdout {
        Holdout::Validation => 2,
        Holdout::Test => 1,
    };
    timelines
        .into_iter()
        .enumerate()
        .filter(|(_, t)| t.len() > drop)
        .map(|(user, mut timeline)| {
            timeline.sort_by_key(|&(item, time)| (time, item));
            let (target, time) = timeline[timeline.len() - drop];
            timeline.truncate(timeline.len() - drop);
            Query {
                user,
                history: timeline,
                target,
                time,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn movie_text_and_parsing() {
        let movies =
            parse_movies("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n1\tToy Story\t1995\tAnimation Children's Comedy\n2\tUnknown\t\tunknown\n").unwrap();
        assert_eq!(
            movies[0].text(),
            "Toy Story (1995). Animation, Children's, Comedy."
        );
        assert_eq!(movies[1].year, None);
    }

    #[test]
    fn leave_last_out_by_time() {
        let movies = (0..4)
            .map(|i| Movie {
                id: i.to_string(),
                title: format!("m{i}"),
                year: None,
                genres: vec![],
            })
            .collect();
        let rating = |item, timestamp| Rating {
            user: 0,
            item,
            rating: 4.0,
            timestamp,
        };
        let data = MovieLens {
            movies,
            ratings: vec![rating(3, 30), rating(0, 10), rating(2, 20), rating(1, 20)],
            users: 1,
        };
        let test = &queries(&data, Holdout::Test)[0];
        assert_eq!((test.target, test.time), (3, 30));
        assert_eq!(test.history, [(0, 10), (1, 20), (2, 20)]);
        let validation = &queries(&data, Holdout::Validation)[0];
        assert_eq!((validation.target, validation.history.len()), (2, 2));
    }
}
